"""The device-side batch builder (`--device-batches`), run on the CPU: every canvas is laid out as `make_batch` lays
it out (true continuation in order, filler only at a gap's end, known tokens clean), the objective's shares match
the CPU builder's, line-end gaps end before a newline, and the loop trains with it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgemma_app.train.__main__ import main
from dgemma_app.train.data import NULL_ID, TokenStream
from dgemma_app.train.device_batches import DeviceBatches, split
from dgemma_app.train.objective import ObjectiveConfig, make_batch

FIRST = 10  # ids below it are special or newline-like in these tests
NL_EVERY = 9  # ids with id % 9 == 0 stand for "starts with a newline"


def _stream(n_files: int = 60, seed: int = 0) -> TokenStream:
    """Files whose tokens are consecutive ids, unique over the corpus: a canvas's source positions can be read off."""
    sizes = np.random.default_rng(seed).integers(20, 600, n_files)
    offsets = np.cumsum([0, *sizes])
    return TokenStream((FIRST + np.arange(offsets[-1])).astype(np.uint16), offsets, 3 * int(offsets[-1]))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def _file_end(stream: TokenStream, token: int) -> int:
    """The id one past the last token of `token`'s file."""
    f = int(np.searchsorted(stream.offsets, token - FIRST, side="right")) - 1
    return FIRST + int(stream.offsets[f + 1])


@pytest.mark.parametrize("k", [1, 2])
def test_every_canvas_is_its_context_continued_with_filler_only_at_gap_ends(k):
    stream = _stream()
    cfg = ObjectiveConfig(canvas_length=32, max_context=16, canvases_per_context=k, tail_noise_prob=0.3,
                          line_end_prob=0.5, newline_ids=list(range(FIRST, 2**16, NL_EVERY)))
    source = DeviceBatches(stream, cfg, 64, 12, 4000, seed=3, step=0, device="cpu")
    for _ in range(4):
        b = source.next(ar=False)
        assert b.context.shape == (64 // k, b.context.shape[1]) and b.canvas.shape == b.target.shape == (64, 32)
        context, target, gap = b.context.numpy(), b.target.numpy(), b.gap.numpy()
        for row in range(64):
            ctx = context[row // k]  # with K = 2, rows 2i and 2i + 1 continue context i
            assert np.array_equal(np.diff(ctx), np.ones(len(ctx) - 1))  # one file, in order
            real = target[row][target[row] != NULL_ID]
            expected = ctx[-1] + 1 + np.arange(len(real))
            assert np.array_equal(real, expected)  # the true continuation, in order, nothing skipped
            end = _file_end(stream, int(ctx[-1]))
            assert (real < end).all()
            for start, stop in _runs(gap[row]):  # inside a gap: true tokens, then filler to its end
                nulls = target[row, start:stop] == NULL_ID
                assert not (np.diff(nulls.astype(int)) < 0).any()
            known_nulls = (~gap[row]) & (target[row] == NULL_ID)
            assert not known_nulls.any() or ctx[-1] + 1 + len(real) == end  # a known <null> only past the file's end
        assert not (b.corrupted & ~b.gap).any() and (b.corrupted.any(1) | ~b.gap.any(1)).all()
        assert torch.equal(b.canvas[~b.corrupted], b.target[~b.corrupted])
        assert torch.allclose(b.weight, b.corrupted.float() + cfg.clean_weight * (b.gap & ~b.corrupted).float())


def _shares(batch) -> np.ndarray:
    """Gap slots, filler slots, noised slots (shares of the canvas) and gaps per canvas."""
    gap, filler = batch.gap.numpy(), (batch.gap & (batch.target == NULL_ID)).numpy()
    gaps = np.mean([len(_runs(row)) for row in gap])
    return np.array([gap.mean(), filler.mean(), batch.corrupted.numpy().mean(), gaps])


def test_the_objective_matches_the_cpu_builder_on_average():
    stream = _stream(200, seed=1)
    cfg = ObjectiveConfig(canvas_length=64, max_context=32, tail_noise_prob=0.3)
    device = _shares(DeviceBatches(stream, cfg, 2048, 12, 4000, seed=0, step=0, device="cpu").next(ar=False))
    cpu = _shares(make_batch(stream, 2048, cfg, 4000, np.random.default_rng(0)))
    assert np.allclose(device, cpu, rtol=0.1), (device, cpu)


def test_with_line_end_prob_one_long_gaps_end_before_a_newline():
    stream = _stream(200, seed=2)
    newline = list(range(FIRST, 2**16, NL_EVERY))
    hits = {}
    for prob in (0.0, 1.0):
        cfg = ObjectiveConfig(canvas_length=64, max_context=16, continuation_prob=0.0, edit_prob=0.0,
                              line_end_prob=prob, newline_ids=newline)
        b = DeviceBatches(stream, cfg, 512, 12, 4000, seed=0, step=0, device="cpu").next(ar=False)
        ends = [(b.target[r, stop] - FIRST) % NL_EVERY == 0 for r in range(512) for start, stop in _runs(b.gap[r].numpy())
                if stop - start >= NL_EVERY and stop < 64 and b.target[r, stop] != NULL_ID]
        assert len(ends) > 100
        hits[prob] = float(np.mean(ends))
    assert hits[1.0] > 0.95 and hits[0.0] < 0.3  # by chance about 1 in 9


def test_causal_lm_windows_are_runs_of_one_file_and_a_seed_repeats_its_batches():
    stream = _stream()
    cfg = ObjectiveConfig(canvas_length=16, max_context=8)
    windows = DeviceBatches(stream, cfg, 32, 12, 4000, seed=5, step=0, device="cpu").next(ar=True)
    assert windows.shape == (32, 13)
    assert (windows.diff(dim=1) == 1).all()
    for w in windows:
        assert int(w[-1]) < _file_end(stream, int(w[0]))
    again = [DeviceBatches(stream, cfg, 8, 12, 4000, seed=5, step=2, device="cpu").next(ar=False) for _ in range(2)]
    assert torch.equal(again[0].canvas, again[1].canvas) and torch.equal(again[0].context, again[1].context)


def test_split_sums_exactly_and_leaves_parts_past_the_count_empty():
    gen = torch.Generator().manual_seed(0)
    total, parts = torch.tensor([0, 5, 40, 7]), torch.tensor([1, 3, 2, 4])
    out = split(total, parts, 4, gen)
    assert torch.equal(out.sum(1), total) and (out >= 0).all()
    assert (out[torch.arange(4)[None, :].expand(4, 4) >= parts[:, None]] == 0).all()


def test_the_train_command_runs_with_device_batches_and_refuses_workers_beside_them(tmp_path):
    from tests.test_train import TINY_SHAPE

    src = tmp_path / "src"
    src.mkdir()
    for i in range(60):
        (src / f"m_{i}.py").write_text(f"def f_{i}(x):\n    return x + {i}\n\n" * 4)
    (tmp_path / "requirements.txt").write_text("# nothing pinned\n")
    corpus, tok, run = tmp_path / "corpus", tmp_path / "tok", tmp_path / "run"
    main(["corpus", "--out", str(corpus), "--requirements", str(tmp_path / "requirements.txt"), "--no-include-stdlib",
          "--no-include-installed-docs", "--extra-root", str(src), "--val-percent", "20"])
    main(["tokenizer", "--corpus", str(corpus), "--out", str(tok), "--vocab-size", "300"])
    common = ["train", "--corpus", str(corpus), "--tokenizer", str(tok), "--run-dir", str(run), "--steps", "3",
              "--warmup", "1", "--batch-size", "4", "--val-every", "3", "--val-batches", "1", "--canvas-length", "16",
              "--max-context", "8", "--threads", "1", "--ar-length", "12", "--ar-share", "0.34", "--line-end-prob", "0.5",
              "--device-batches", *TINY_SHAPE]
    with pytest.raises(SystemExit, match="drop --workers"):
        main([*common, "--workers", "2"])
    main(common)
    record = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 3 and np.isfinite(record["train_loss"]) and np.isfinite(record["n0.9"])
