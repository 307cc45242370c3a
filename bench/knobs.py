"""CPU speed knobs: dtype (fp32 / bf16) x torch threads, and optionally static cache + torch.compile, in one run.

    python -m bench.knobs [--model DIR] [--tasks 10] [--dtypes fp32 bf16] [--thread-counts 1 2] [--compile]

Every configuration fills the same tasks; the configurations take turns task by task, so a change in
the machine's load (other jobs share these cores) hits them alike. `--compile` adds the library's compiled
path (a static KV cache makes `generate` torch.compile the decoder) for the first dtype at the most threads;
its first fill, which compiles, is reported apart.
"""
from __future__ import annotations

import torch

from bench.common import base_parser, header, passes_per_task, table
from dgemma_app import eval as ev
from dgemma_app.engine import Engine
from dgemma_app.wiring import load_from_args, settings_from_args


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--thread-counts", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--compile", action="store_true", help="add a static-cache + torch.compile row")
    args = parser.parse_args()
    tasks = ev.load_set("single-line", args.data, args.tasks)
    default_threads = torch.get_num_threads()
    configs = [(d, n, False) for d in args.dtypes for n in args.thread_counts]
    if args.compile:
        configs.append((args.dtypes[0], max(args.thread_counts), True))
    engines = {}
    for dtype, _, compiled in configs:
        if (dtype, compiled) not in engines:
            args.dtype = dtype
            loaded = load_from_args(args)
            if compiled:
                loaded.model.generation_config.cache_implementation = "static"
            engines[(dtype, compiled)] = (Engine(loaded), settings_from_args(loaded, args))
    first = {}
    results: dict[tuple, list[ev.TaskResult]] = {c: [] for c in configs}
    for config in configs:  # the first fill is timed apart (the compiled row compiles here)
        torch.set_num_threads(config[1])
        engine, settings = engines[(config[0], config[2])]
        _, first[config] = ev.timed_fill(engine, tasks[0].marked(), settings)
    for task in tasks:
        for config in configs:
            torch.set_num_threads(config[1])
            engine, settings = engines[(config[0], config[2])]
            results[config].append(ev.evaluate_task(engine, task, settings, run_tests=False))
    engine, settings = engines[(args.dtypes[0], False)]
    args.dtype = "/".join(args.dtypes)
    torch.set_num_threads(default_threads)  # the header names the machine's default
    print(f"# CPU knobs — single-line, {len(tasks)} tasks — {header(args, engine, settings)}\n")
    rows = []
    for (d, n, c), out in results.items():
        s = ev.summarize("", out)
        rows.append([d, n, "static cache + torch.compile" if c else "eager", first[(d, n, c)], s.seconds_p50, s.seconds_per_task,
                     s.seconds_p95, passes_per_task(out), s.tokens_per_pass, s.exact_match])
    print(table(["dtype", "threads", "path", "first fill s", "p50 s", "mean s", "p95 s", "passes/fill", "tokens/pass", "exact"], rows))


if __name__ == "__main__":
    main()
