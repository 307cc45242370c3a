"""The training script end to end on a tiny corpus: corpus split and de-duplication, tokenizer, the
objective's batch structure, a few training steps, export, and loading the export with `load_model`."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dgemma_app.model import NULL_TOKEN, SPECIAL_TOKENS, load_model
from dgemma_app.train.__main__ import main
from dgemma_app.train.corpus import CorpusConfig, build, is_validation, read_docs
from dgemma_app.train.data import NULL_ID, TokenStream, encode_split, read_pack
from dgemma_app.train import loop
from dgemma_app.train.loop import LoopConfig, ModelShape, State, batch_loss, build_model
from dgemma_app.train.objective import (
    ObjectiveConfig, ar_logits, ar_window, forward_logits, layout, make_batch, next_token_loss, weighted_loss,
)
from dgemma_app.train.prefetch import batch_source, draw
from dgemma_app.train.probe import SLOTS, prefix_probe, probe_losses

TINY_SHAPE = ["--hidden-size", "32", "--num-layers", "2", "--num-heads", "2", "--num-kv-heads", "1",
              "--num-experts", "2", "--top-k-experts", "1", "--expert-size", "32", "--intermediate-size", "64",
              "--max-positions", "128"]
SHAPE = ModelShape(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, num_experts=2, top_k_experts=1,
                   expert_size=32, intermediate_size=64, max_positions=128)  # the same tiny shape as TINY_SHAPE


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


def test_the_corpus_command_takes_every_corpus_setting_as_a_flag(workdir, tmp_path):
    """The command's flags come from CorpusConfig: a smaller file cap leaves the longer modules out."""
    root = workdir["root"]
    common = ["corpus", "--requirements", str(root / "requirements.txt"), "--no-include-stdlib",
              "--no-include-installed-docs", "--extra-root", str(root / "src"), "--val-percent", "20"]
    main([*common, "--out", str(tmp_path / "all")])
    main([*common, "--out", str(tmp_path / "short"), "--max-file-chars", "150"])
    everything = json.loads((tmp_path / "all" / "stats.json").read_text())
    short = json.loads((tmp_path / "short" / "stats.json").read_text())
    assert everything["files"] == 41 and 0 < short["files"] < 41 and short["chars"] < everything["chars"]


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
    model = build_model(300, SHAPE, 16)
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
          "--canvas-length", "16", "--max-context", "8", "--threads", "1", "--ar-length", "12",
          "--ar-share", "0.5", "--ar-weight", "0.5", "--tail-noise-prob", "0.3", *TINY_SHAPE])
    history = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4]
    for key in ("n0.1", "n0.9", "ar", "t1_true", "t1_other", "slot0", "slots1_7", "data_share"):
        assert all(np.isfinite(h[key]) for h in history), key
    assert len(history[-1]["slots_true"]) == len(history[-1]["slots_other"]) == SLOTS
    main(["train", "--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--run-dir", str(run),
          "--steps", "6", "--warmup", "2", "--batch-size", "4", "--val-every", "2", "--val-batches", "1",
          "--threads", "1", "--ar-length", "12", "--resume"])
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]  # resumed at step 4, with the run's own canvas and shape

    out = tmp_path / "model"
    out.mkdir()
    (out / "LEDGER.md").write_text("## Ledger\n\n| run | obvious |\n|---|---|\n| r1 | 3 of 48 |\n")
    main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--entropy-bound", "0.2"])
    card = (out / "README.md").read_text()
    assert card.rstrip().endswith("| r1 | 3 of 48 |")  # the ledger beside the weights closes the card
    assert "| t = 1 true / other |" in card
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


def _stream(workdir) -> TokenStream:
    return encode_split(workdir["corpus"] / "train.jsonl", workdir["tok"], workdir["corpus"] / "cache")


def test_tail_noise_corrupts_every_gap_slot_from_a_cut_on(workdir):
    cfg = ObjectiveConfig(canvas_length=16, max_context=8, continuation_prob=0, edit_prob=0, tail_noise_prob=1.0)
    b = make_batch(_stream(workdir), 32, cfg, 300, np.random.default_rng(3))
    cuts = set()
    for gap, corrupted in zip(b.gap, b.corrupted):
        flags = corrupted[gap].tolist()  # the row's gap slots in order
        first = flags.index(True)
        assert all(flags[first:]) and not any(flags[:first])
        cuts.add(first)
    assert len(cuts) > 1  # the cut moves from row to row


def test_causal_lm_start_trains_the_shared_weights_not_the_decoder_only_parts(workdir):
    model = build_model(300, SHAPE, 16)
    window = ar_window(_stream(workdir), 4, 10, np.random.default_rng(0))  # [4, 11]
    logits = ar_logits(model, window)
    assert logits.shape == (4, 11, 300)
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 300), window[:, 1:].reshape(-1))
    assert torch.isclose(next_token_loss(logits, window), manual)
    # a causal LM: the logits at position i do not change when a later token does
    changed = window.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 300
    assert torch.allclose(ar_logits(model, changed)[:, :-1], logits[:, :-1], atol=1e-5)
    obj = ObjectiveConfig(canvas_length=16, max_context=8)
    windows = draw(_stream(workdir), obj, 4, 10, 300, True, np.random.default_rng(1))  # [4, 11]
    loss, tokens = batch_loss(model, windows, obj, LoopConfig(batch_size=4, ar_length=10))
    loss.backward()
    assert tokens == 4 * 11
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0  # shared by encoder, decoder and head
    decoder_only = [g for n, g in grads.items() if "self_conditioning" in n]
    assert decoder_only and all(g is None or g.abs().sum() == 0 for g in decoder_only)


def test_prefix_probe_noises_exactly_the_gap_and_scores_both_prefixes(workdir):
    cfg = ObjectiveConfig(canvas_length=16, max_context=8)
    probe = prefix_probe(_stream(workdir), cfg, 300, 2, 4)
    for b in probe.batches:
        assert torch.equal(b.canvas[:, SLOTS:], b.target[:, SLOTS:]) and b.gap[:, :SLOTS].all()
        assert not b.gap[:, SLOTS:].any() and (b.canvas[:, :SLOTS] != b.target[:, :SLOTS]).any()
    with torch.no_grad():
        out = probe_losses(build_model(300, SHAPE, 16), probe)
    assert out["t1_true"] != out["t1_other"]  # another row's prefix changes the prediction
    assert round(out["slot0"], 3) == out["slots_true"][0] and len(out["slots_true"]) == SLOTS


def test_init_from_a_model_folder_starts_from_its_weights(workdir, tmp_path):
    run = tmp_path / "run"
    common = ["--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--warmup", "1",
              "--batch-size", "2", "--val-every", "100", "--val-batches", "1", "--canvas-length", "16",
              "--max-context", "8", "--threads", "1", "--ar-length", "12"]
    main(["train", "--run-dir", str(run), "--steps", "1", *common, *TINY_SHAPE])
    folder, second = tmp_path / "model", tmp_path / "second"
    main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(folder)])
    main(["train", "--run-dir", str(second), "--steps", "1", "--lr", "0", "--init-from", str(folder), *common])
    before, after = (torch.load(r / "checkpoint.pt", weights_only=False) for r in (run, second))
    assert after["meta"]["shape"] == before["meta"]["shape"]  # read from the folder, not the default flags
    for name, value in before["model"].items():
        assert torch.equal(value, after["model"][name]), name
    start, end = [json.loads(line) for line in (second / "log.jsonl").read_text().splitlines()]  # the folder's model first
    assert (start["step"], start["train_loss"], end["step"]) == (0, None, 1)  # lr 0 kept its weights: it scores alike
    assert all(start[key] == pytest.approx(end[key], rel=1e-4) for key in ("n0.1", "n0.9", "ar", "t1_true", "slot0"))


def test_a_one_token_context_adds_no_next_token_loss(workdir):
    """A short-context batch can have a 1-token prefix: the encoder's next-token loss must not make it NaN."""
    model = build_model(300, SHAPE, 16)
    obj = ObjectiveConfig(canvas_length=16, max_context=2, short_context_prob=1.0, ar_weight=0.5)
    for seed in range(4):  # short contexts are 1 token long here
        batch = draw(_stream(workdir), obj, 2, 256, 300, False, np.random.default_rng(seed))
        loss, _ = batch_loss(model, batch, obj, LoopConfig(batch_size=2))
        assert torch.isfinite(loss)


def test_a_pack_alone_trains_on_the_chosen_device_and_exports_shards(workdir, tmp_path):
    """`pack` holds both splits and the tokenizer in one file; a run from that file alone, with the GPU path's
    switches at tiny scale (--device, --bf16), trains, and its export split into small shards loads."""
    pack = tmp_path / "elsewhere" / "corpus.npz"
    main(["pack", "--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--out", str(pack)])
    run = tmp_path / "run"
    main(["train", "--pack", str(pack), "--run-dir", str(run), "--steps", "2", "--warmup", "1", "--batch-size", "4",
          "--val-every", "2", "--val-batches", "1", "--canvas-length", "16", "--max-context", "8", "--threads", "1",
          "--ar-length", "12", "--device", "cpu", "--bf16", *TINY_SHAPE])
    assert (run / "tokenizer" / "tokenizer.json").read_bytes() == (workdir["tok"] / "tokenizer.json").read_bytes()
    streams = read_pack(pack, tmp_path / "tok-copy")
    assert np.array_equal(streams["train"].tokens, _stream(workdir).tokens)
    record = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and np.isfinite(record["n0.9"]) and np.isfinite(record["ar"])

    out = tmp_path / "model"
    main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--max-shard-size", "60KB"])
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 1 and not (out / "model.safetensors").exists()
    loaded = load_model(out, device_map="cpu")
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    for name, value in loaded.model.state_dict().items():
        if name in ckpt["model"]:
            assert torch.equal(value, ckpt["model"][name]), name


def test_init_from_a_folder_with_another_tokenizer_is_refused(workdir, tmp_path):
    model_dir = tmp_path / "other"
    model_dir.mkdir()
    (model_dir / "tokenizer.json").write_text("{}")
    with pytest.raises(SystemExit, match="tokenizer differs"):
        main(["train", "--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--run-dir",
              str(tmp_path / "run"), "--init-from", str(model_dir), "--steps", "1", *TINY_SHAPE])


def _children() -> set[int]:
    """This process's child processes, live or not yet reaped, apart from multiprocessing's resource tracker."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if ppid == os.getpid() and b"resource_tracker" not in command:
            found.add(int(stat.parent.name))
    return found


def _worker_run(workdir, run: Path, *extra: str) -> None:
    main(["train", "--corpus", str(workdir["corpus"]), "--tokenizer", str(workdir["tok"]), "--run-dir", str(run),
          "--steps", "4", "--warmup", "1", "--batch-size", "4", "--val-every", "2", "--val-batches", "1",
          "--canvas-length", "16", "--max-context", "8", "--threads", "1", "--ar-length", "12", "--ar-share", "0.5",
          "--workers", "2", *extra, *TINY_SHAPE])


def test_an_old_checkpoint_state_without_data_seconds_loads():
    old = {"step": 3, "seconds": 1.5, "cpu_seconds": 1.2, "tokens": 99, "history": []}  # saved before data_seconds
    assert State(**old).data_seconds == 0.0


@pytest.mark.slow
def test_batch_workers_train_alike_for_one_seed_log_data_share_and_leave_no_process(workdir, tmp_path):
    """Two runs with --workers 2 and one seed (through the AR start into diffusion) log the same losses, each
    validation record holds data_share, and no worker outlives its run."""
    before = _children()
    for name in ("a", "b"):
        _worker_run(workdir, tmp_path / name)
    assert _children() - before == set() and not multiprocessing.active_children()
    logs = [[json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()] for name in "ab"]
    assert [h["step"] for h in logs[0]] == [2, 4]
    for record in logs[0] + logs[1]:
        assert 0 <= record["data_share"] <= 1 and record["data_seconds"] <= record["seconds"]
    timing = {"seconds", "cpu_seconds", "data_seconds", "data_share"}
    assert [{k: v for k, v in h.items() if k not in timing} for h in logs[0]] == [
        {k: v for k, v in h.items() if k not in timing} for h in logs[1]]
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["state"]["data_seconds"] >= 0


@pytest.mark.slow
def test_an_interrupted_run_stops_its_batch_workers(workdir, tmp_path, monkeypatch):
    seen = []

    def interrupt(cfg, state):
        if state.step == 2:
            seen.extend(p.pid for p in multiprocessing.active_children())
            raise KeyboardInterrupt
        return cfg.lr

    monkeypatch.setattr(loop, "learning_rate", interrupt)
    before = _children()
    with pytest.raises(KeyboardInterrupt):
        _worker_run(workdir, tmp_path / "run")
    assert len(seen) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in seen)  # stopped and reaped
    assert _children() - before == set()


@pytest.mark.slow
def test_a_failing_batch_worker_raises_in_the_loop(workdir):
    """A worker's exception reaches the loop with its traceback (no endless wait), and the worker is gone."""
    obj = ObjectiveConfig(canvas_length=16, max_context=10**6)  # no file has that much context
    before = _children()
    with pytest.raises(RuntimeError, match="no file has"):
        with batch_source(_stream(workdir), obj, 2, 12, 300, 0, 0, 1, False) as source:
            source.next(False)
    assert _children() - before == set()
