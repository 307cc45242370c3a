"""End-to-end fill latency on CPU: p50/p95 per workload, tokens/s, tokens per pass, peak memory, cold start.

    python -m bench.latency [--model DIR] [--dtype bf16] [--threads N] [--tasks 10] [--cold-runs 3]
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import base_parser, header, load_engine, passes_per_task, table, workloads
from dgemma_app import eval as ev
from dgemma_app.model import PROJECT_ROOT


def measure(engine, settings, name: str, tasks: list[ev.Task]) -> list:
    """One table row: wall time of each fill (ranking included, no test programs run), summarised as eval does."""
    results = [ev.evaluate_task(engine, task, settings, run_tests=False) for task in tasks]
    s = ev.summarize(name, results)
    return [name, s.tasks, s.seconds_p50, s.seconds_p95, s.seconds_per_task, s.tokens_per_second, s.tokens_per_pass, passes_per_task(results)]


def cold_start(model: str, dtype: str, threads: int | None, task: ev.Task, runs: int) -> list[float]:
    """Wall seconds of fresh `python -m dgemma_app fill` processes, from spawn to exit after one fill.
    The CLI has no thread flag, so `threads` reaches torch through OMP_NUM_THREADS."""
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "task.py"
        source.write_text(task.marked())
        command = [sys.executable, "-m", "dgemma_app", "fill", str(source), "--model", model, "--dtype", dtype, "--device-map", "cpu"]
        out = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
            out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10, help="fills per workload")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes for the cold start (0: skip)")
    args = parser.parse_args()
    engine, settings, load_s = load_engine(args)
    rss_loaded = psutil.Process().memory_info().rss
    work = workloads(args.data, args.tasks)
    ev.warm_up(engine, work["single-line"][0], settings)
    rows = [measure(engine, settings, name, tasks) for name, tasks in work.items()]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(f"# latency — {header(args, engine, settings)}\n")
    print(table(
        ["workload", "fills", "p50 s", "p95 s", "mean s", "tokens/s", "tokens/pass", "passes/fill"], rows,
    ))
    memory = [["model load (in process)", f"{load_s:.2f} s"], ["RSS after load", f"{rss_loaded / 2**20:.0f} MiB"], ["peak RSS", f"{peak / 2**20:.0f} MiB"]]
    if args.cold_runs:
        cold = cold_start(args.model, args.dtype, args.threads, work["single-line"][0], args.cold_runs)
        memory.append(["cold start, process to first fill (median of %d)" % len(cold), f"{statistics.median(cold):.2f} s (min {min(cold):.2f})"])
    print()
    print(table(["measure", "value"], memory))


if __name__ == "__main__":
    main()
