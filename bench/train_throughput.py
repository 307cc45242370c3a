"""Training throughput with several canvases per context: steps of the real objective, side by side.

    python -m bench.train_throughput [--model models/dgemma-code-tiny] [--pack runs/pack.npz] [--batch-size 32]
                                     [--canvases-per-context 1 2 4] [--steps 6] [--threads 1]

Each step (forward, backward, AdamW) trains `--batch-size` canvases; with K canvases per context the encoder reads
batch/K contexts and each of them serves K canvases. The settings take turns step by step, so a load that
changes during the run touches them alike. Printed per setting: median seconds per step, canvases and noised gap
slots (the slots the loss is on) per second, and the ratio of noised slots per second to K = 1. The model is
continued from `--model`'s weights and the objective is the training command's default one.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from dgemma_app.train.__main__ import init_model
from dgemma_app.train.data import TokenStream, read_pack
from dgemma_app.train.loop import LoopConfig, batch_loss
from dgemma_app.train.objective import ObjectiveConfig, check_whole_contexts, make_batch


def measure(model, stream: TokenStream, obj: ObjectiveConfig, batch_size: int, canvases: list[int], steps: int,
            vocab: int) -> dict[int, tuple[list[float], list[int]]]:
    """Per K: (seconds of each timed step, noised gap slots of each), the settings taking turns step by step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loop = LoopConfig(batch_size=batch_size)
    rng = np.random.default_rng(0)
    out: dict[int, tuple[list[float], list[int]]] = {k: ([], []) for k in canvases}
    model.train()
    for step in range(steps + 1):
        for k in canvases:
            cfg = replace(obj, canvases_per_context=k)
            batch = make_batch(stream, batch_size, cfg, vocab, rng)
            started = time.perf_counter()
            loss, _ = batch_loss(model, batch, cfg, loop)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:  # the first step of each setting warms up
                out[k][0].append(time.perf_counter() - started)
                out[k][1].append(int(batch.corrupted.sum()))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=Path("models/dgemma-code-tiny"))
    p.add_argument("--pack", type=Path, default=Path("runs/pack.npz"), help="made by `python -m dgemma_app.train pack`")
    p.add_argument("--batch-size", type=int, default=32, help="canvases per step")
    p.add_argument("--canvases-per-context", dest="canvases", type=int, nargs="+", default=[1, 2, 4], help="the settings to compare")
    p.add_argument("--steps", type=int, default=6, help="timed steps per setting, after one untimed")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for k in args.canvases:
        try:
            check_whole_contexts(args.batch_size, ObjectiveConfig(canvases_per_context=k))
        except ValueError as err:
            p.error(str(err))
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tok:
        stream = read_pack(args.pack, Path(tok))["train"]
    config = AutoConfig.from_pretrained(args.model)
    vocab, obj = config.get_text_config().vocab_size, ObjectiveConfig(canvas_length=config.canvas_length)
    model = init_model(args.model, vocab, obj.canvas_length)
    results = measure(model, stream, obj, args.batch_size, args.canvases, args.steps, vocab)
    print(f"{args.model}, batch {args.batch_size} canvases, {args.steps} steps each, {args.threads} thread(s)")
    print("| canvases per context | s / step (median) | canvases / s | noised slots / s | × K = 1 |")
    print("|---|---|---|---|---|")
    base = None
    for k, (seconds, slots) in results.items():
        per_step, rate = statistics.median(seconds), sum(slots) / sum(seconds)
        base = base or rate
        print(f"| {k} | {per_step:.2f} | {args.batch_size / per_step:.1f} | {rate:.0f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
