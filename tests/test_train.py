"""The training script end to end on a tiny corpus: corpus split and de-duplication, tokenizer, the
objective's batch structure, a few training steps, export, and loading the export with `load_model`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dgemma_app.model import NULL_TOKEN, SPECIAL_TOKENS, load_model
from dgemma_app.train.__main__ import main
from dgemma_app.train.corpus import CorpusConfig, build, is_validation, read_docs
from dgemma_app.train.data import NULL_ID, TokenStream, encode_split
from dgemma_app.train.loop import ModelShape, build_model
from dgemma_app.train.objective import ObjectiveConfig, forward_logits, layout, make_batch, weighted_loss

TINY_SHAPE = ["--hidden-size", "32", "--num-layers", "2", "--num-heads", "2", "--num-kv-heads", "1",
              "--num-experts", "2", "--top-k-experts", "1", "--expert-size", "32", "--intermediate-size", "64",
              "--max-positions", "128"]


def _source_tree(root: Path) -> Path:
    """A small folder of Python files and prose, with one duplicate and one forbidden benchmark file."""
    src = root / "src"
    (src / "pkg").mkdir(parents=True)
    for i in range(40):
        body = "".join(f"    total += {j} * x_{i}\n" for j in range(i % 7 + 2))
        (src / "pkg" / f"mod_{i}.py").write_text(f"def f_{i}(x_{i}):\n    total = 0\n{body}    return total\n")
    (src / "pkg" / "copy_of_mod_3.py").write_text((src / "pkg" / "mod_3.py").read_text())
    (src / "pkg" / "bench.py").write_text("# HumanEval/0\ndef has_close_elements(numbers):\n    pass\n")
    (src / "guide.md").write_text("# Guide\n\nThis package adds numbers. It is small and simple.\n" * 5)
    return src


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    src = _source_tree(root)
    (root / "requirements.txt").write_text("# nothing pinned\n")
    cfg = CorpusConfig(requirements=root / "requirements.txt", include_stdlib=False, include_installed_docs=False,
                       extra_roots=[src], val_percent=20)
    build(cfg, root / "corpus")
    main(["tokenizer", "--corpus", str(root / "corpus"), "--out", str(root / "tok"), "--vocab-size", "300"])
    return {"root": root, "corpus": root / "corpus", "tok": root / "tok"}


def test_corpus_dedups_splits_by_path_and_skips_benchmark(workdir):
    stats = json.loads((workdir["corpus"] / "stats.json").read_text())
    docs = {split: list(read_docs(workdir["corpus"] / f"{split}.jsonl")) for split in ("train", "val")}
    paths = [d.path for split in docs.values() for d in split]
    assert stats["files"] == len(paths) == 41  # 40 modules + guide; the copy and the benchmark file are out
    assert not any("bench.py" in p for p in paths)
    assert sum("mod_3.py" in p for p in paths) == 1
    assert stats["prose_files"] == 1
    assert docs["val"] and all(is_validation(d.path, 20) for d in docs["val"])
    assert not any(is_validation(d.path, 20) for d in docs["train"])


def test_tokenizer_special_ids_and_lossless_round_trip(workdir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(workdir["tok"]))
    assert sorted(tok.all_special_ids) == [0, 1, 2, 3, 4]
    assert tok.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    text = "def g(x):\n\tif x:\n        return  'é ü 𝛑'\n\n"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert ids[0] != tok.convert_tokens_to_ids("<bos>")


def test_windows_stay_in_one_file_and_read_null_past_its_end():
    files = [[2, 10, 11, 12, 13], [2, 20, 21]]
    stream = TokenStream(np.array(sum(files, []), dtype=np.uint16), np.array([0, 5, 8]), chars=0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        context, after = stream.window(rng, 2, 4)
        whole = [int(x) for x in np.concatenate([context, after]) if x != NULL_ID]
        file = next(f for f in files if whole[-1] in f)  # never <bos>: it opens a file
        start = file.index(whole[0])
        assert whole == file[start : start + len(whole)]  # contiguous, from one file
        assert (after == NULL_ID).sum() == 4 - (len(whole) - 2)  # filler only after the file's end
        seen.add(tuple(after.tolist()))
    assert (21, NULL_ID, NULL_ID, NULL_ID) in seen


def test_layout_puts_true_tokens_then_null_in_gaps():
    after = np.arange(10, 30)
    canvas, gap = layout(after, [(0, 2, 4), (3, 1, 2)], 12)
    assert canvas.tolist() == [10, 11, NULL_ID, NULL_ID, 12, 13, 14, 15, NULL_ID, 16, 17, 18]
    assert gap.tolist() == [True] * 4 + [False] * 3 + [True] * 2 + [False] * 3


def test_batch_structure_and_loss_only_where_promised(workdir):
    stream = encode_split(workdir["corpus"] / "train.jsonl", workdir["tok"], workdir["corpus"] / "cache")
    cfg = ObjectiveConfig(canvas_length=16, max_context=8)
    b = make_batch(stream, 32, cfg, 300, np.random.default_rng(0))
    assert b.canvas.shape == b.target.shape == (32, 16) and b.context.shape[0] == 32
    assert torch.equal(b.canvas[~b.corrupted], b.target[~b.corrupted])  # known and clean slots untouched
    assert not (b.corrupted & ~b.gap).any()  # only gap slots are noised
    assert b.corrupted.any(dim=1).all()
    assert torch.equal(b.weight[~b.gap], torch.zeros_like(b.weight[~b.gap]))
    assert torch.equal(b.weight[b.corrupted], torch.ones_like(b.weight[b.corrupted]))
    # within each gap, `<null>` filler is never followed by a true token
    for row, gap in zip(b.target, b.gap):
        runs = np.split(row.numpy(), np.flatnonzero(np.diff(gap.numpy().astype(int))) + 1)
        starts = np.r_[0, np.flatnonzero(np.diff(gap.numpy().astype(int))) + 1]
        for run, start in zip(runs, starts):
            if gap[start]:
                is_null = run == NULL_ID
                assert not (is_null[:-1] & ~is_null[1:]).any()
    # with no weight on clean slots, their logits do not move the loss
    logits = torch.randn(32, 16, 300, requires_grad=True)
    weighted_loss(logits, b.target, b.corrupted.float()).backward()
    assert logits.grad[~b.corrupted].abs().max() == 0 and logits.grad[b.corrupted].abs().sum() > 0


def test_one_forward_trains_encoder_and_decoder(workdir):
    """A token seen only in the context gets a gradient: the loss reaches the encoder path."""
    stream = encode_split(workdir["corpus"] / "train.jsonl", workdir["tok"], workdir["corpus"] / "cache")
    shape = ModelShape(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, num_experts=2, top_k_experts=1,
                       expert_size=32, intermediate_size=64, max_positions=128)
    model = build_model(300, shape, 16)
    b = make_batch(stream, 4, ObjectiveConfig(canvas_length=16, max_context=8), 300, np.random.default_rng(1))
    only_context = sorted(set(b.context.flatten().tolist()) - set(b.canvas.flatten().tolist()))
    assert only_context
    loss = weighted_loss(forward_logits(model, b, torch.tensor([True, False, True, False])), b.target, b.weight)
    loss.backward()
    grad = model.get_input_embeddings().weight.grad  # shared by encoder and decoder
    assert grad[only_context].abs().sum() > 0


def test_train_export_and_load(workdir, tmp_path):
    run = tmp_path / "run"
    main(["train", "--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--run-dir", str(run),
          "--steps", "4", "--warmup", "2", "--batch-size", "4", "--val-every", "2", "--val-batches", "1",
          "--canvas-length", "16", "--max-context", "8", "--threads", "1", *TINY_SHAPE])
    history = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4]
    assert all(np.isfinite(h["n0.1"]) and np.isfinite(h["n0.9"]) for h in history)
    main(["train", "--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--run-dir", str(run),
          "--steps", "6", "--warmup", "2", "--batch-size", "4", "--val-every", "2", "--val-batches", "1",
          "--threads", "1", "--resume"])
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]  # resumed at step 4, with the run's own canvas and shape

    out = tmp_path / "model"
    main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--entropy-bound", "0.2"])
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "README.md"} <= {p.name for p in out.iterdir()}
    loaded = load_model(out, device_map="cpu")
    assert loaded.canvas_length == 16
    assert loaded.null_id == SPECIAL_TOKENS.index(NULL_TOKEN) == 4
    assert sorted(loaded.tokenizer.all_special_ids) == [0, 1, 2, 3, 4]
    assert loaded.model.generation_config.sampler_config.entropy_bound == 0.2
    assert "apache-2.0" in (out / "README.md").read_text()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    for name, value in loaded.model.state_dict().items():
        if name in ckpt["model"]:
            assert torch.equal(value, ckpt["model"][name]), name
