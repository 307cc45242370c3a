"""Training batches per second: the CPU builder (`make_batch`, a Python loop over rows) against the device builder
(`--device-batches`, tensor operations over the batch), side by side in one run.

    python -m bench.batch_builders [--pack runs/carry/pack.npz] [--batch-size 768] [--batches 20] [--threads 1]
                                   [--device cpu cuda]

The objective is the GPU recipe's (`deploy/gpu_train.sh`: canvas 64, context 128, line-end gaps at 0.5, 30 %
tail-noised rows, newline tokens from the pack's tokenizer). The builders take turns batch by batch, so a load
that changes during the run touches them alike. On a GPU a batch counts as built once the device has finished it
(the builder only queues work there; the timing waits for it).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dgemma_app.train.data import read_pack
from dgemma_app.train.device_batches import DeviceBatches
from dgemma_app.train.objective import ObjectiveConfig, make_batch
from dgemma_app.train.tokenizer import load_tokenizer, newline_ids

RECIPE = dict(canvas_length=64, max_context=128, line_end_prob=0.5, tail_noise_prob=0.3)


def measure(builders: dict[str, Callable[[], object]], batches: int) -> dict[str, list[float]]:
    """Seconds per batch of each builder, after one untimed batch each, the builders taking turns."""
    out: dict[str, list[float]] = {name: [] for name in builders}
    for i in range(batches + 1):
        for name, build in builders.items():
            started = time.perf_counter()
            build()
            if i:
                out[name].append(time.perf_counter() - started)
    return out


def builders_for(stream, obj: ObjectiveConfig, batch_size: int, vocab: int, devices: list[str]) -> dict[str, Callable]:
    """The CPU builder and one device builder per device, each a no-argument call that returns a finished batch."""
    rng = np.random.default_rng(0)
    out: dict[str, Callable] = {"make_batch (CPU, per-row Python)": lambda: make_batch(stream, batch_size, obj, vocab, rng)}
    for device in devices:
        source = DeviceBatches(stream, obj, batch_size, 256, vocab, seed=0, step=0, device=device)

        def build(source=source, device=device):
            batch = source.next(ar=False)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return batch

        out[f"DeviceBatches on {device}"] = build
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pack", type=Path, default=Path("runs/carry/pack.npz"), help="made by `python -m dgemma_app.train pack`")
    p.add_argument("--batch-size", type=int, default=768, help="canvases per batch (the GPU recipe's)")
    p.add_argument("--batches", type=int, default=20, help="timed batches per builder, after one untimed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", dest="devices", nargs="+", default=["cpu"], help="where the device builder runs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tok_dir:
        stream = read_pack(args.pack, Path(tok_dir))["train"]
        tokenizer = load_tokenizer(Path(tok_dir))
    obj = ObjectiveConfig(**RECIPE, newline_ids=newline_ids(tokenizer))
    results = measure(builders_for(stream, obj, args.batch_size, tokenizer.get_vocab_size(), args.devices), args.batches)
    print(f"{args.pack}: {len(stream.tokens):,} tokens; batch {args.batch_size} canvases, {args.batches} batches each, "
          f"{args.threads} thread(s)")
    print("| builder | ms / batch (median) | batches / s | canvases / s | × make_batch |")
    print("|---|---|---|---|---|")
    base = None
    for name, seconds in results.items():
        per_batch = statistics.median(seconds)
        base = base or per_batch
        print(f"| {name} | {1000 * per_batch:.1f} | {1 / per_batch:.1f} | {args.batch_size / per_batch:,.0f} | "
              f"{base / per_batch:.1f} |")


if __name__ == "__main__":
    main()
