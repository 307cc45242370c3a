"""Line-aligned gaps in the training objective (`--line-end-prob`): a gap's true tokens end just before a newline
token, where the app's line and block gaps end, so the model can learn when a fill is complete."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dgemma_app.train.__main__ import main
from dgemma_app.train.data import NULL_ID, TokenStream
from dgemma_app.train.objective import ObjectiveConfig, end_at_line, line_gaps, make_batch

NL = 7  # a token id standing for "starts with a newline"


def test_end_at_line_picks_a_newline_inside_the_budget_or_keeps_the_length():
    after = np.array([10, 11, NL, 12, 13, NL, 14, 15])
    rng = np.random.default_rng(0)
    lengths = {end_at_line(after, 0, 4, 5, np.array([NL]), rng) for _ in range(50)}
    assert lengths == {2, 5}  # the text after the gap starts at a newline: after[2] or after[5]
    assert end_at_line(after, 0, 1, 1, np.array([NL]), rng) == 1  # no newline within 1 slot: unchanged
    assert end_at_line(after, 3, 3, 1, np.array([NL]), rng) == 3  # after[4] is no newline, after[5] is out of reach
    assert end_at_line(after, 3, 1, 2, np.array([NL]), rng) == 2


def test_line_gaps_moves_later_gaps_with_the_earlier_ones():
    after = np.array([1, NL, 2, 3, 4, NL, 5, 6, 7, 8])
    cfg = ObjectiveConfig(line_end_prob=1.0, newline_ids=[NL])
    plan = line_gaps(after, [(0, 3, 3), (1, 2, 4)], cfg, np.random.default_rng(0))
    assert plan[0] == (0, 1, 3)  # cut to end before after[1]
    assert plan[1] == (1, 3, 4)  # now starts at after[2] (the first gap got shorter); after[5] is the newline in reach
    assert line_gaps(after, [(0, 3, 3)], ObjectiveConfig(), np.random.default_rng(0)) == [(0, 3, 3)]  # off: as drawn


def _share_ending_at_a_newline(line_end_prob: float) -> float:
    """Of the infill gaps of 9 or more slots in one batch, the share whose next known token is a newline token."""
    rng = np.random.default_rng(0)
    files = [rng.integers(20, 60, 3000) for _ in range(3)]
    for f in files:
        f[::9] = NL  # a newline every 9 tokens: a gap of 9 or more slots has one in reach, unless past a file's end
    tokens = np.concatenate(files).astype(np.uint16)
    stream = TokenStream(tokens, np.array([0, 3000, 6000, 9000]), 4 * len(tokens))
    cfg = ObjectiveConfig(line_end_prob=line_end_prob, newline_ids=[NL], continuation_prob=0.0, edit_prob=0.0, max_context=16)
    batch = make_batch(stream, 64, cfg, 64, np.random.default_rng(1))
    hits = []
    for target, gap in zip(batch.target.numpy(), batch.gap.numpy()):
        for end in np.flatnonzero(np.diff(gap.astype(int)) == -1) + 1:  # the first known position after a gap
            start = end - 1
            while start > 0 and gap[start - 1]:
                start -= 1
            if end - start >= 9:
                hits.append(target[end] == NL)
    assert len(hits) > 20
    return float(np.mean(hits))


def test_with_line_end_prob_one_the_gaps_end_before_a_newline():
    assert _share_ending_at_a_newline(1.0) > 0.9
    assert _share_ending_at_a_newline(0.0) < 0.3  # about 1 in 9 by chance


def test_the_train_command_fills_newline_ids_from_the_tokenizer(tmp_path):
    """`--line-end-prob` alone is enough: the run finds the tokens that start with a newline in its tokenizer."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(200):
        (src / f"m_{i}.py").write_text(f"def f_{i}(x):\n    return x + {i}\n\n" * 3)
    (tmp_path / "requirements.txt").write_text("# nothing pinned\n")
    corpus = tmp_path / "corpus"
    main(["corpus", "--out", str(corpus), "--requirements", str(tmp_path / "requirements.txt"), "--no-include-stdlib",
          "--no-include-installed-docs", "--extra-root", str(src), "--val-percent", "20"])
    main(["tokenizer", "--corpus", str(corpus), "--out", str(tmp_path / "tok"), "--vocab-size", "300"])
    main(["train", "--corpus", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--run-dir", str(tmp_path / "run"),
          "--steps", "2", "--batch-size", "2", "--val-every", "2", "--val-batches", "1", "--threads", "1", "--ar-length", "12",
          "--line-end-prob", "0.5", "--max-context", "16", "--canvas-length", "32", "--hidden-size", "32",
          "--num-layers", "1", "--num-heads", "2", "--num-kv-heads", "1", "--num-experts", "2", "--top-k-experts", "1",
          "--expert-size", "32", "--intermediate-size", "64", "--max-positions", "64"])
    meta = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["meta"]["objective"]
    from dgemma_app.train.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tmp_path / "tok")
    assert meta["newline_ids"] and all(tokenizer.decode([i]).startswith("\n") for i in meta["newline_ids"])
    assert NULL_ID not in meta["newline_ids"]
