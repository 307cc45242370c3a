"""Where the milliseconds of one fill go, grouped by stage, plus the top functions under cProfile.

    python -m bench.profile [--model DIR] [--set single-line] [--task 0] [--repeat 3] [--threads N]

Stages are timed by wrapping the engine's, the library's and tree-sitter's entry points; each stage's
time is *exclusive* (time in wrapped callees is charged to them), so the rows add up to the fill.
"""
from __future__ import annotations

import cProfile
import functools
import io
import pstats
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from bench.common import base_parser, header, load_engine, table
from dgemma_app import engine as engine_mod
from dgemma_app import eval as ev
from dgemma_app import syntax
from dgemma_app.backends import diffusion_gemma


@dataclass
class Stopwatch:
    """Exclusive wall time per label, per call, for nested wrapped callables."""

    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _stack: list[float] = field(default_factory=list)  # time spent in wrapped children of each open frame

    def wrap(self, label: str, fn: Callable) -> Callable:
        @functools.wraps(fn)  # keeps the signature: the library inspects processors' __call__
        def timed(*args, **kwargs):
            self._stack.append(0.0)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                children = self._stack.pop()
                self.calls[label].append(spent - children)
                if self._stack:
                    self._stack[-1] += spent

        return timed


def instrument(engine, watch: Stopwatch) -> None:
    """Wrap every stage's entry point (class, module and instance attributes as the callers look them up)."""
    model = engine.loaded.model
    targets = [
        (engine_mod.Engine, "fill", "engine: other (windows, stats)"),
        (engine_mod, "build_rows", "tokenize + build canvases"),
        (engine_mod.Engine, "step", "engine: window setup + write-back"),
        (model, "generate", "library: generate setup"),
        (model.model.encoder, "forward", "encoder (once per window)"),
        (model, "_denoising_step", "library: sampling, acceptance, stopping"),
        (model, "forward", "decoder forward passes"),
        (diffusion_gemma._PassRecorder, "__call__", "engine: clamp + per-pass record"),
        (engine_mod.Engine, "_record_pass", "engine: trace objects"),
        (engine_mod.Engine, "_trace_pass", "engine: trace objects"),
        (engine_mod.Engine, "_candidate", "candidates: decode + stitch"),
        (syntax, "parse_report", "tree-sitter parse"),
        (syntax, "rank_key", "ranking"),
        (syntax, "rank_reason", "ranking"),
    ]
    for owner, name, label in targets:
        setattr(owner, name, watch.wrap(label, getattr(owner, name)))


def render_seconds(result) -> float | None:
    """Seconds to render every pass of the trace, the plot and the filled code as the page does; None without the UI."""
    try:
        from dgemma_app.ui import render
    except ImportError:
        return None
    from dgemma_app.trace import pass_positions

    started = time.perf_counter()
    positions = pass_positions(result.trace)  # what the pass slider steps through
    for k, index in enumerate(positions):
        render.canvas(result.trace[index], render.trace_caption(result.trace, k))
    render.plot(result.trace, len(positions) - 1)
    render.filled_code(result.text, result.candidates[0].fill_spans, result.report)
    return time.perf_counter() - started


def top_functions(engine, text: str, settings, count: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(engine.fill, text, "python", settings)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(count)
    return "\n".join(line for line in out.getvalue().splitlines() if line.strip())


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--set", default="single-line", choices=list(ev.SET_FILES))
    parser.add_argument("--task", type=int, default=0, help="index into the set")
    parser.add_argument("--repeat", type=int, default=3, help="timed fills (averaged)")
    parser.add_argument("--top", type=int, default=15, help="cProfile rows")
    parser.add_argument("--per-pass", action="store_true", help="list every pass")
    args = parser.parse_args()
    engine, settings, _ = load_engine(args)
    task = ev.load_set(args.set, args.data)[args.task]
    text = task.marked()
    ev.warm_up(engine, task, settings)
    cprofile = top_functions(engine, text, settings, args.top)
    watch = Stopwatch()
    instrument(engine, watch)
    started = time.perf_counter()
    for _ in range(args.repeat):
        result = engine.fill(text, "python", settings)
    total = (time.perf_counter() - started) / args.repeat
    ui = render_seconds(result)
    per_fill = {label: (sum(times) / args.repeat, len(times) / args.repeat) for label, times in watch.calls.items()}
    rows = [[label, ms * 1000, 100 * ms / total, calls] for label, (ms, calls) in sorted(per_fill.items(), key=lambda kv: -kv[1][0])]
    print(f"# profile — {task.task_id}, {result.stats.passes} passes, {result.stats.tokens} tokens — {header(args, engine, settings)}\n")
    print(table(["stage", "ms/fill", "% of fill", "calls/fill"], rows))
    print(f"\nfill total {total * 1000:.1f} ms (mean of {args.repeat})"
          + ("" if ui is None else f"; UI rendering of all {len(result.trace)} trace passes, plot and code (outside the fill): {ui * 1000:.1f} ms"))
    labels = ("decoder forward passes", "engine: clamp + per-pass record", "library: sampling, acceptance, stopping")
    passes = len(watch.calls[labels[0]]) // args.repeat
    per_pass = [[1000 * t for t in watch.calls[label][:passes]] for label in labels]  # the first timed fill
    if args.per_pass:
        print("\nper pass of the first timed fill, ms:\n")
        print(table(["pass", "decoder forward", "engine processor", "library sampling"], [[k + 1, *(c[k] for c in per_pass)] for k in range(passes)]))
    else:
        print(f"\nper pass over the {passes} passes of the first timed fill, ms (--per-pass lists each):\n")
        stats = (("first", lambda c: c[0]), ("mean", statistics.mean), ("p50", statistics.median), ("max", max))
        print(table(["", "decoder forward", "engine processor", "library sampling"], [[name, *(f(c) for c in per_pass)] for name, f in stats]))
    print(f"\ncProfile of one fill, top {args.top} by own time:\n\n```\n{cprofile}\n```")


if __name__ == "__main__":
    main()
