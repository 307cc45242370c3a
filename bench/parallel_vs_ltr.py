"""Parallel diffusion decoding vs one token per pass, same model, same tasks, same run.

    python -m bench.parallel_vs_ltr [--model DIR] [--set single-line] [--tasks 20] [--threads N]
                                    [--gap-length true] [--exact-length]

Each task is filled by both modes back to back (so machine load hits both alike); the baseline is
`FillSettings(left_to_right=True)`: the same model and loop, committing the leftmost free slot greedily and
ending a gap at its first `<null>` filler, as an autoregressive decoder ends at its end token.
"""
from __future__ import annotations

import dataclasses

from bench.common import add_workload_args, base_parser, header, load_engine, passes_per_task, table
from dgemma_app import eval as ev

TARGET_SPEEDUP = 4.0


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    add_workload_args(parser, tasks=20)
    args = parser.parse_args()
    engine, parallel, _ = load_engine(args)
    modes = {"parallel (default sampler)": dataclasses.replace(parallel, left_to_right=False),
             "left-to-right (1 token/pass)": dataclasses.replace(parallel, left_to_right=True)}
    tasks = ev.load_set(args.set, args.data, args.tasks)
    for settings in modes.values():
        ev.warm_up(engine, tasks[0], settings)
    results: dict[str, list[ev.TaskResult]] = {name: [] for name in modes}
    for task in tasks:
        for name, settings in modes.items():
            results[name].append(ev.evaluate_task(engine, task, settings, true_length=args.gap_length == "true"))
    summaries = {name: ev.summarize(name, rs) for name, rs in results.items()}
    gaps = "<FILL:true length>" + (", exact length" if parallel.exact_length else "") if args.gap_length == "true" else "<FILL>"
    print(f"# parallel vs left-to-right — {args.set}, {len(tasks)} tasks, {gaps} — {header(args, engine, parallel)}\n")
    print(table(
        ["mode", "s/task", "p50 s", "passes/task", "tokens/pass", "tokens/s", "exact", "pass@1", "parses"],
        [[name, s.seconds_per_task, s.seconds_p50, passes_per_task(results[name]), s.tokens_per_pass,
          s.tokens_per_second, s.exact_match, s.pass_at_1, s.parse_rate] for name, s in summaries.items()],
    ))
    fast, slow = summaries.values()
    speedup = slow.seconds_per_task / fast.seconds_per_task
    pass_ratio = slow.tokens_per_pass and fast.tokens_per_pass / slow.tokens_per_pass
    verdict = "hit" if speedup >= TARGET_SPEEDUP and fast.pass_at_1 >= slow.pass_at_1 else "miss"
    if not fast.pass_at_1 and not slow.pass_at_1:
        verdict += " (vacuous on pass@1: no task passes in either mode; compare the parse rates)"
    print(f"\nspeed ratio (left-to-right s/task ÷ parallel s/task): {speedup:.2f}x; tokens/pass ratio {pass_ratio:.2f}x; "
          f"pass@1 {fast.pass_at_1:.3f} vs {slow.pass_at_1:.3f}; target >= {TARGET_SPEEDUP:.0f}x at no loss of pass@1: {verdict}")


if __name__ == "__main__":
    main()
