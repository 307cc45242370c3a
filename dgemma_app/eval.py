"""Evaluation harness: `python -m dgemma_app.eval` on HumanEval-Infilling and the held-out corpus split.

Each task is text with one or more gaps; the engine fills them and the harness scores the fills:
pass@1 (the filled program plus its unit test run in a separate, time-limited `python -I` process
in a fresh temporary folder, never in this process), exact match (trailing whitespace ignored per
line), whether the filled program parses (tree-sitter) and compiles (CPython's `compile()`, never run),
fill length against the true length, seconds per fill and tokens per decoder pass. The `obvious` set
(`dgemma_app/evalsets/obvious.txt`) holds one-line gaps any Python programmer fills at a glance.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .gaps import FILL_MARKER
from .model import PROJECT_ROOT
from .sandbox import PROGRAM_TIMEOUT_S, run_program

DATA_DIR = PROJECT_ROOT.parent / "shared" / "benchmarks" / "human-eval-infilling"
CORPUS_DIR = PROJECT_ROOT / "runs" / "corpus"
SET_FILES = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
OBVIOUS = "obvious"
SET_NAMES = [*SET_FILES, OBVIOUS]
HELDOUT = "heldout"
HELDOUT_LINES = "heldout-lines"
MARKER_TEXTS = ("<FILL", "<EDIT>", "</EDIT>")
HELDOUT_MAX_CHARS = 40_000  # longer held-out files only slow tokenizing and parsing
HELDOUT_MAX_LINES = 3  # a held-out gap is 1..3 consecutive whole lines


class EvalError(Exception):
    """The evaluation cannot run (missing data, unusable corpus); the message says what to do."""


@dataclass(frozen=True)
class Task:
    """Known text around one or more gaps: `parts` has one more entry than `solutions`."""

    task_id: str
    parts: tuple[str, ...]
    solutions: tuple[str, ...]
    test: str = ""  # empty: no unit test (held-out files), so no pass@1
    entry_point: str = ""

    def marked(self, sizes: Sequence[int | None] | None = None) -> str:
        """The engine's input: `<FILL>` per gap, or `<FILL:n>` where a size is given."""
        sizes = sizes or [None] * len(self.solutions)
        markers = [FILL_MARKER if n is None else f"<FILL:{n}>" for n in sizes]
        return "".join(p + m for p, m in zip(self.parts, markers)) + self.parts[-1]


@dataclass
class TaskResult:
    task_id: str
    fills: list[str]
    exact: bool
    parses: bool
    compiles: bool  # CPython compiles the filled program (never executed)
    fill_tokens: int  # tokens the engine wrote into the gaps
    true_tokens: int  # tokens of the true gap text
    passed: bool | None  # None: the task has no test
    status: str  # program outcome, or "untested"
    seconds: float  # wall time of Engine.fill, ranking included
    passes: int  # decoder forward passes
    tokens: int
    exact_any: bool = False  # some candidate is exact / compiles, not only the first: what a perfect ranking gives
    compiles_any: bool = False


@dataclass
class SetSummary:
    name: str
    tasks: int
    pass_at_1: float | None
    exact_match: float
    parse_rate: float
    compile_rate: float
    length_ratio: float  # fill tokens over true tokens, summed over tasks (1.0: the true length)
    seconds_per_task: float
    seconds_p50: float
    seconds_p95: float
    tokens_per_pass: float  # fill tokens over decoder passes, summed over tasks
    tokens_per_second: float
    timeouts: int
    exact_any: float = 0.0  # share of tasks where some candidate is exact: the ceiling of any re-ranking
    compile_any: float = 0.0


# ----------------------------------------------------------------------------- data


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def task_from_record(record: dict) -> Task:
    """A HumanEval-Infilling record as a one-gap task."""
    return Task(
        task_id=record["task_id"],
        parts=(record["prompt"], record["suffix"]),
        solutions=(record["canonical_solution"],),
        test=record["test"],
        entry_point=record["entry_point"],
    )


def spread(items: Sequence, limit: int | None) -> list:
    """`limit` items evenly spaced over `items` (all of them when no limit), so a small run covers every problem."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(max(0, limit))]


def load_set(name: str, data_dir: Path = DATA_DIR, limit: int | None = None) -> list[Task]:
    if name == OBVIOUS:
        from .evalsets import read_cases

        return spread([Task(f"{OBVIOUS}/{c.case_id}", (c.prefix, c.suffix), (c.solution,)) for c in read_cases()], limit)
    path = Path(data_dir) / SET_FILES[name]
    if not path.is_file():
        raise EvalError(f"{path} does not exist; point --data at the human-eval-infilling folder.")
    return spread([task_from_record(r) for r in read_jsonl_gz(path)], limit)


def cut_gap(task_id: str, text: str, start_line: int, lines: int) -> Task:
    """A task whose gap is `lines` whole lines of `text` from `start_line` (0-based), newline included."""
    kept = text.splitlines(keepends=True)
    prompt = "".join(kept[:start_line])
    gap = "".join(kept[start_line : start_line + lines])
    return Task(task_id, (prompt, "".join(kept[start_line + lines :])), (gap,))


def heldout_files(corpus_dir: Path) -> list[tuple[str, str]]:
    """(label, text) of the held-out Python files that can carry a gap: parse cleanly, no marker text."""
    from . import syntax
    from .train.corpus import read_docs

    path = Path(corpus_dir) / "val.jsonl"
    if not path.is_file():
        raise EvalError(
            f"No held-out split at {path}; build the corpus first (python -m dgemma_app.train corpus) or pass --corpus."
        )
    files = []
    for doc in read_docs(path):
        if doc.kind != "code" or not doc.path.endswith(".py") or len(doc.text) > HELDOUT_MAX_CHARS:
            continue
        if any(m in doc.text for m in MARKER_TEXTS) or not syntax.parse_report(doc.text, "python").parses:
            continue
        files.append((doc.path, doc.text))
    if not files:
        raise EvalError(f"The held-out split at {path} has no usable Python files.")
    return files


def heldout_tasks(files: Sequence[tuple[str, str]], n: int, seed: int = 0) -> list[Task]:
    """`n` random gaps of 1..HELDOUT_MAX_LINES whole non-blank lines, deterministic for a seed."""
    rng = random.Random(seed)
    tasks = []
    while len(tasks) < n:
        label, text = files[rng.randrange(len(files))]
        lines = text.splitlines(keepends=True)
        count = rng.randint(1, HELDOUT_MAX_LINES)
        starts = [i for i in range(len(lines) - count + 1) if all(l.strip() for l in lines[i : i + count])]
        if not starts:
            continue
        start = rng.choice(starts)
        tasks.append(cut_gap(f"{HELDOUT}/{label}/L{start}+{count}", text, start, count))
    return tasks


def heldout_line_tasks(files: Sequence[tuple[str, str]], n: int, seed: int = 0) -> list[Task]:
    """`n` random gaps cut as the obvious set cuts them: one non-blank line's text after its indentation, its line
    break left after the gap (the app's `return <FILL>` case), deterministic for a seed."""
    rng, tasks = random.Random(seed), []
    while len(tasks) < n:
        label, text = files[rng.randrange(len(files))]
        lines = text.splitlines(keepends=True)
        start = rng.choice([i for i, line in enumerate(lines) if line.strip()])
        head = "".join(lines[:start]) + lines[start][: len(lines[start]) - len(lines[start].lstrip())]  # with the indentation
        content = text[len(head):].split("\n", 1)[0].rstrip("\r")
        tasks.append(Task(f"{HELDOUT_LINES}/{label}/L{start}", (head, text[len(head) + len(content):]), (content,)))
    return tasks


# ----------------------------------------------------------------------------- scoring


def normalize(code: str) -> str:
    """Code compared for exact match: trailing whitespace of each line and trailing blank lines dropped."""
    return "\n".join(line.rstrip() for line in code.rstrip().split("\n"))


def is_exact(fills: Sequence[str], solutions: Sequence[str]) -> bool:
    return len(fills) == len(solutions) and all(normalize(f) == normalize(s) for f, s in zip(fills, solutions))


def compiles(source: str) -> bool:
    """Whether CPython compiles `source` (tree-sitter accepts an empty block body that CPython rejects)."""
    from .syntax import compile_error

    return compile_error(source) is None


def test_program(filled: str, task: Task) -> str:
    """What the benchmark runs: the filled program, its test, and the call of `check`."""
    return f"{filled}\n{task.test}\ncheck({task.entry_point})"


def token_lengths(tokenizer, solutions: Iterable[str]) -> list[int]:
    """The true gap sizes in tokens, for `--gap-length true`."""
    return [max(1, len(tokenizer(s, add_special_tokens=False)["input_ids"])) for s in solutions]


def timed_fill(engine, text: str, settings):
    """(FillResult, wall seconds of the fill, ranking included): how every figure here and in bench/ is timed."""
    started = time.perf_counter()
    result = engine.fill(text, "python", settings)
    return result, time.perf_counter() - started


def warm_up(engine, task: Task, settings) -> None:
    """One untimed fill first: lazy initialisation is not a fill's cost."""
    engine.fill(task.marked(), "python", settings)


def evaluate_task(engine, task: Task, settings, true_length: bool = False, timeout: float = PROGRAM_TIMEOUT_S,
                  run_tests: bool = True) -> TaskResult:
    """Fill one task and score it (`run_tests=False`: no pass@1, for timing runs)."""
    true_sizes = token_lengths(engine.loaded.tokenizer, task.solutions)
    sizes = true_sizes if true_length else None
    result, seconds = timed_fill(engine, task.marked(sizes), settings)
    outcome = run_program(test_program(result.text, task), timeout) if task.test and run_tests else None
    return TaskResult(
        task_id=task.task_id,
        fills=result.fills,
        exact=is_exact(result.fills, task.solutions),
        parses=result.report.parses,
        compiles=compiles(result.text),
        fill_tokens=result.stats.tokens,
        true_tokens=sum(true_sizes),
        passed=None if outcome is None else outcome.passed,
        status="untested" if outcome is None else outcome.status,
        seconds=round(seconds, 4),
        passes=result.stats.passes,
        tokens=result.stats.tokens,
        exact_any=any(is_exact(c.fills, task.solutions) for c in result.candidates),
        compiles_any=any(compiles(c.text) for c in result.candidates),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarize(name: str, results: Sequence[TaskResult]) -> SetSummary:
    n = len(results)
    tested = [r for r in results if r.passed is not None]
    seconds = [r.seconds for r in results]
    total_s, passes, tokens = sum(seconds), sum(r.passes for r in results), sum(r.tokens for r in results)
    share = lambda k: round(k / n, 4) if n else 0.0  # noqa: E731
    return SetSummary(
        name=name,
        tasks=n,
        pass_at_1=round(sum(r.passed for r in tested) / len(tested), 4) if tested else None,
        exact_match=share(sum(r.exact for r in results)),
        parse_rate=share(sum(r.parses for r in results)),
        compile_rate=share(sum(r.compiles for r in results)),
        length_ratio=round(sum(r.fill_tokens for r in results) / max(1, sum(r.true_tokens for r in results)), 3),
        seconds_per_task=round(total_s / n, 4) if n else 0.0,
        seconds_p50=round(statistics.median(seconds), 4) if seconds else 0.0,
        seconds_p95=round(percentile(seconds, 95), 4),
        tokens_per_pass=round(tokens / passes, 3) if passes else 0.0,
        tokens_per_second=round(tokens / total_s, 2) if total_s else 0.0,
        timeouts=sum(r.status == "timeout" for r in results),
        exact_any=share(sum(r.exact_any for r in results)),
        compile_any=share(sum(r.compiles_any for r in results)),
    )


def run_tasks(engine, name: str, tasks: Sequence[Task], settings, true_length=False, timeout=PROGRAM_TIMEOUT_S, progress=True):
    """Evaluate `tasks` with a progress bar; returns (summary, per-task results)."""
    from tqdm import tqdm

    results: list[TaskResult] = []
    bar = tqdm(tasks, desc=name, unit="task", disable=not progress, file=sys.stderr)
    for task in bar:
        results.append(evaluate_task(engine, task, settings, true_length, timeout))
        tested = [r.passed for r in results if r.passed is not None]
        exact = sum(r.exact for r in results) / len(results)
        bar.set_postfix({"pass@1": f"{sum(tested) / len(tested):.2f}" if tested else "-", "exact": f"{exact:.2f}"}, refresh=False)
    return summarize(name, results), results


# ----------------------------------------------------------------------------- command line


@dataclass
class EvalReport:
    model: str
    settings: dict
    gap_length: str
    machine: dict
    started: str
    sets: dict[str, dict] = field(default_factory=dict)


def machine_info() -> dict:
    import torch

    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}


def _cpu_name() -> str:
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    except OSError:
        names = []
    return (names or [platform.processor() or "unknown"])[0]


def build_parser() -> argparse.ArgumentParser:
    from .wiring import add_model_args, add_sampler_args

    p = argparse.ArgumentParser(prog="python -m dgemma_app.eval", description="HumanEval-Infilling and held-out evaluation.")
    p.add_argument("--set", dest="sets", action="append", choices=SET_NAMES, help="benchmark set (obvious: the package's one-line gaps); repeat for several (default single-line)")
    p.add_argument("--limit", type=int, help="tasks per set, evenly spread over the set")
    p.add_argument("--heldout", type=int, default=0, metavar="N", help="also N random gaps from held-out corpus files")
    p.add_argument("--heldout-lines", type=int, default=0, metavar="N", help="also N one-line gaps from held-out files, cut as in the obvious set")
    p.add_argument("--heldout-seed", type=int, default=0, help="seed of the --heldout and --heldout-lines draws")
    p.add_argument("--gap-length", choices=["engine", "true"], default="engine", help="true: <FILL:n> with the true token length")
    p.add_argument("--timeout", type=float, default=PROGRAM_TIMEOUT_S, help="seconds each test program may run")
    p.add_argument("--data", type=Path, default=DATA_DIR, help="human-eval-infilling folder")
    p.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="corpus folder holding val.jsonl")
    p.add_argument("--out", type=Path, help="write the summary and per-task results as JSON here")
    p.add_argument("--no-progress", action="store_true")
    add_sampler_args(p)
    add_model_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from .engine import Engine
    from .model import ModelLoadError
    from .settings import SettingsError
    from .wiring import load_from_args, settings_from_args

    args = build_parser().parse_args(argv)
    sets = args.sets or ([] if args.heldout or args.heldout_lines else ["single-line"])
    try:
        workloads = [(name, load_set(name, args.data, args.limit)) for name in sets]
        files = heldout_files(args.corpus) if args.heldout or args.heldout_lines else []
        if args.heldout:
            workloads.append((HELDOUT, heldout_tasks(files, args.heldout, args.heldout_seed)))
        if args.heldout_lines:
            workloads.append((HELDOUT_LINES, heldout_line_tasks(files, args.heldout_lines, args.heldout_seed)))
        loaded = load_from_args(args)
        settings = settings_from_args(loaded, args)
    except (EvalError, ModelLoadError, SettingsError) as err:
        print(f"dgemma_app.eval: {err}", file=sys.stderr)
        return 2
    engine = Engine(loaded)
    if workloads and workloads[0][1]:
        warm_up(engine, workloads[0][1][0], settings)
    report = EvalReport(loaded.source, asdict(settings), args.gap_length, machine_info(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    per_task: dict[str, list[dict]] = {}
    for name, tasks in workloads:
        summary, results = run_tasks(engine, name, tasks, settings, args.gap_length == "true", args.timeout, not args.no_progress)
        report.sets[name] = asdict(summary)
        per_task[name] = [asdict(r) for r in results]
    print(json.dumps(asdict(report), indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**asdict(report), "tasks": per_task}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
