"""What the benchmark scripts share: command-line flags, model loading, workloads, and table printing."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from dgemma_app import eval as ev


def base_parser(description: str) -> argparse.ArgumentParser:
    """Model flags (as the CLI), sampler flags (as the eval), data folder and thread count."""
    from dgemma_app.wiring import add_model_args, add_sampler_args

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=ev.DATA_DIR, help="human-eval-infilling folder")
    add_sampler_args(parser)
    add_model_args(parser)
    return parser


def add_workload_args(parser: argparse.ArgumentParser, tasks: int) -> None:
    """--set, --tasks and --gap-length, for the scripts that fill one HumanEval-Infilling set."""
    parser.add_argument("--set", default="single-line", choices=list(ev.SET_FILES))
    parser.add_argument("--tasks", type=int, default=tasks)
    parser.add_argument("--gap-length", choices=["engine", "true"], default="engine",
                        help="true: <FILL:n> with the solution's token length (add --exact-length to forbid the filler)")


def load_engine(args: argparse.Namespace):
    """(engine, default settings, load seconds) for the parsed flags; exits with one line on a load error."""
    from dgemma_app.engine import Engine
    from dgemma_app.model import ModelLoadError
    from dgemma_app.settings import SettingsError
    from dgemma_app.wiring import load_from_args, settings_from_args

    started = time.perf_counter()
    try:
        loaded = load_from_args(args)
        settings = settings_from_args(loaded, args)
    except (ModelLoadError, SettingsError) as err:
        sys.exit(f"bench: {err}")
    return Engine(loaded), settings, time.perf_counter() - started


def family(task_id: str) -> str:
    """`SingleLineInfilling/HumanEval/12/L3` -> `HumanEval/12`."""
    return "/".join(task_id.split("/")[1:3])


def two_gaps(first: ev.Task, second: ev.Task) -> ev.Task | None:
    """One program with two single-line gaps: `second`'s gap and, in its prompt, the line that is `first`'s gap.
    None when that line is not found as a whole line or the gaps would touch."""
    prompt = second.parts[0]
    line = first.solutions[0]
    at = prompt.rfind("\n" + line)
    if at < 0:
        return None
    before, between = prompt[: at + 1], prompt[at + 1 + len(line) :]
    if not between.strip():
        return None
    task_id = f"TwoGaps/{family(first.task_id)}/{first.task_id.rsplit('/', 1)[1]}+{second.task_id.rsplit('/', 1)[1]}"
    return ev.Task(task_id, (before, between, second.parts[1]), (line, second.solutions[0]), second.test, second.entry_point)


def multi_gap_tasks(single: Sequence[ev.Task], limit: int | None) -> list[ev.Task]:
    """Per problem, the first and last single-line gaps of the problem in one program, spread over problems."""
    groups: dict[str, list[ev.Task]] = defaultdict(list)
    for task in single:
        groups[family(task.task_id)].append(task)
    tasks = [t for g in groups.values() if len(g) >= 2 and (t := two_gaps(g[0], g[-1])) is not None]
    return ev.spread(tasks, limit)


def workloads(data_dir: Path, limit: int) -> dict[str, list[ev.Task]]:
    """single-line, multi-line and multi-gap HumanEval-Infilling tasks, `limit` of each."""
    single = ev.load_set("single-line", data_dir)
    return {
        "single-line": ev.spread(single, limit),
        "multi-line": ev.load_set("multi-line", data_dir, limit),
        "multi-gap": multi_gap_tasks(single, limit),
    }


def passes_per_task(results: Sequence[ev.TaskResult]) -> float:
    """Decoder passes per filled task."""
    return sum(r.passes for r in results) / len(results) if results else 0.0


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table; floats to 3 significant decimals."""
    cell = lambda v: "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def header(args: argparse.Namespace, engine, settings) -> str:
    """One line naming the run: date, machine, model, dtype, threads, sampler settings and the machine's load
    (other jobs share these cores)."""
    info = ev.machine_info()
    knobs = " ".join(f"{name}={value}" for name, value in dataclasses.asdict(settings).items())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {info['cpu']}, {info['cores']} cores, "
        f"torch {info['torch']} threads={info['torch_threads']}; model {engine.loaded.source} "
        f"(dtype {args.dtype}); {knobs}; load average {os.getloadavg()[0]:.1f}"
    )

