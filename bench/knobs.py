"""CPU speed knobs: dtype (fp32 / bf16) x torch threads, single-line fill latency in one run.

    python -m bench.knobs [--model DIR] [--tasks 10] [--dtypes fp32 bf16] [--thread-counts 1 2]

Every configuration fills the same tasks; the configurations take turns task by task, so a change in
the machine's load (other jobs share these cores) hits them alike.
"""
from __future__ import annotations

import statistics
import time

import torch

from bench.common import base_parser, header, table
from dgemma_app import eval as ev
from dgemma_app.cli import load_from_args, settings_from_args
from dgemma_app.engine import Engine


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--thread-counts", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    tasks = ev.load_set("single-line", args.data, args.tasks)
    default_threads = torch.get_num_threads()
    engines = {}
    for dtype in args.dtypes:
        args.dtype = dtype
        loaded = load_from_args(args)
        engines[dtype] = (Engine(loaded), settings_from_args(loaded, args))
    configs = [(d, n) for d in args.dtypes for n in args.thread_counts]
    seconds = {c: [] for c in configs}
    exact = {c: 0 for c in configs}
    tokens = {c: [0, 0] for c in configs}
    for dtype, threads in configs:  # warm-up
        torch.set_num_threads(threads)
        engines[dtype][0].fill(tasks[0].marked(), "python", engines[dtype][1])
    for task in tasks:
        for dtype, threads in configs:
            torch.set_num_threads(threads)
            engine, settings = engines[dtype]
            started = time.perf_counter()
            result = engine.fill(task.marked(), "python", settings)
            seconds[(dtype, threads)].append(time.perf_counter() - started)
            exact[(dtype, threads)] += ev.is_exact(result.fills, task.solutions)
            tokens[(dtype, threads)][0] += result.stats.tokens
            tokens[(dtype, threads)][1] += result.stats.passes
    engine, settings = engines[args.dtypes[0]]
    args.dtype = "/".join(args.dtypes)
    torch.set_num_threads(default_threads)  # the header names the machine's default
    print(f"# CPU knobs — single-line, {len(tasks)} tasks — {header(args, engine, settings)}\n")
    print(table(
        ["dtype", "threads", "p50 s", "mean s", "p95 s", "tokens/pass", "exact"],
        [[d, n, statistics.median(seconds[(d, n)]), statistics.mean(seconds[(d, n)]), ev.percentile(seconds[(d, n)], 95),
          tokens[(d, n)][0] / max(1, tokens[(d, n)][1]), exact[(d, n)] / len(tasks)] for d, n in configs],
    ))


if __name__ == "__main__":
    main()
