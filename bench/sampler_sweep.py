"""Sampler settings against passes, latency and quality, on the same tasks in one run.

    python -m bench.sampler_sweep [--model DIR] [--tasks 40] [--threads N] [--gap-length true] --grid "entropy_bound=0.5,2 t_max=0.5"
    python -m bench.sampler_sweep --tasks 200 --obvious --heldout-lines 200 --grid "cache_weight=0.1,0.3"

Each `--grid` names settings fields with comma-separated values; every combination is one row, and the
rows take turns task by task so a change in machine load hits them alike. The first row is the model's
default settings (plus any sampler flags given). One table per workload: the HumanEval set (`--tasks 0`: none),
the obvious set (`--obvious`), held-out one-line gaps (`--heldout-lines N`). "any exact" / "any compiles" count a
task when some candidate is, not only the first-ranked: the most any re-ranking of the candidates could reach.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from bench.common import add_workload_args, base_parser, header, load_engine, passes_per_task, table
from dgemma_app import eval as ev
from dgemma_app.wiring import front_end_settings


def parse_grid(spec: str) -> list[dict]:
    """`"a=1,2 b=3"` -> [{a: 1, b: 3}, {a: 2, b: 3}], values typed as the setting."""
    types = {s.name: s.kind for s in front_end_settings()}
    axes = []
    for item in spec.split():
        name, _, values = item.partition("=")
        if name not in types:
            raise SystemExit(f"sampler_sweep: unknown setting {name!r}; known: {', '.join(types)}")
        axes.append([(name, _typed(name, types[name], v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else []  # no grid: the defaults' row alone


def _typed(name: str, kind: type, text: str):
    """`text` as the setting's type; booleans are spelt true / false (bool("false") would be True)."""
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise SystemExit(f"sampler_sweep: {name} takes true or false, not {text!r}")
        return text.lower() == "true"
    return kind(text)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    add_workload_args(parser, tasks=40)
    parser.add_argument("--grid", default="", help='e.g. "entropy_bound=0.5,2 confidence_threshold=0.005,0.05"')
    parser.add_argument("--obvious", action="store_true", help="also the obvious one-line gaps")
    parser.add_argument("--heldout-lines", type=int, default=0, metavar="N", help="also N one-line gaps from held-out files (seed 0)")
    parser.add_argument("--corpus", type=Path, default=ev.CORPUS_DIR, help="corpus folder holding val.jsonl")
    args = parser.parse_args()
    engine, default, _ = load_engine(args)
    changes = parse_grid(args.grid)
    rows = [default] + [dataclasses.replace(default, **change) for change in changes]  # each validated as it is made
    workloads = [(args.set, ev.load_set(args.set, args.data, args.tasks))] if args.tasks else []
    workloads += [(ev.OBVIOUS, ev.load_set(ev.OBVIOUS))] if args.obvious else []
    if args.heldout_lines:
        workloads.append((ev.HELDOUT_LINES, ev.heldout_line_tasks(ev.heldout_files(args.corpus), args.heldout_lines)))
    ev.warm_up(engine, workloads[0][1][0], default)
    changed = sorted({name for change in changes for name in change})
    for name, tasks in workloads:
        results: list[list[ev.TaskResult]] = [[] for _ in rows]
        for task in tasks:
            for settings, out in zip(rows, results):
                out.append(ev.evaluate_task(engine, task, settings, true_length=args.gap_length == "true"))
        print(f"# sampler sweep — {name}, {len(tasks)} tasks, gap length {args.gap_length} — {header(args, engine, default)}\n")
        body = []
        for settings, out in zip(rows, results):
            s = ev.summarize("", out)
            body.append([getattr(settings, n) for n in changed] + [passes_per_task(out), s.seconds_p50, s.seconds_per_task, s.tokens_per_pass,
                                                                  s.parse_rate, s.compile_rate, s.compile_any, s.exact_match, s.exact_any, s.pass_at_1])
        print(table(changed + ["passes/task", "p50 s", "s/task", "tokens/pass", "parses", "compiles", "any compiles", "exact", "any exact",
                               "pass@1"], body) + "\n", flush=True)


if __name__ == "__main__":
    main()
