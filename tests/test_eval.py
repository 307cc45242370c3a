"""The evaluation harness: the isolated pass@1 runner, scoring, and a 2-task end-to-end run with the tiny model."""
from __future__ import annotations

import json

import pytest

from dgemma_app import eval as ev

TASK = ev.Task(
    task_id="toy/add",
    parts=("def add(a, b):\n", "\n"),
    solutions=("    return a + b\n",),
    test="def check(candidate):\n    assert candidate(2, 3) == 5\n",
    entry_point="add",
)


def program(fill: str) -> str:
    return ev.test_program(TASK.parts[0] + fill + TASK.parts[1], TASK)


def test_canonical_solution_passes():
    outcome = ev.run_program(program(TASK.solutions[0]))
    assert outcome.passed and outcome.status == "passed"


def test_wrong_fill_fails():
    outcome = ev.run_program(program("    return a - b\n"))
    assert not outcome.passed and outcome.status == "failed"


def test_infinite_loop_times_out_as_fail():
    outcome = ev.run_program(program("    while True:\n        pass\n"), timeout=1.0)
    assert not outcome.passed and outcome.status == "timeout"
    assert outcome.seconds < 5


def test_program_runs_isolated_in_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outcome = ev.run_program("import os\nopen('left-behind.txt', 'w').write('x')\n")
    assert outcome.passed and not (tmp_path / "left-behind.txt").exists()


def test_exact_match_ignores_trailing_whitespace_only():
    assert ev.is_exact(["    return a + b  \n\n"], ["    return a + b\n"])
    assert not ev.is_exact(["  return a + b\n"], ["    return a + b\n"])


def test_marked_text_and_true_sizes():
    two = ev.Task("t", ("a", "b", "c"), ("x", "y"))
    assert two.marked() == "a<FILL>b<FILL>c"
    assert two.marked([3, 4]) == "a<FILL:3>b<FILL:4>c"


def test_spread_covers_the_set():
    assert ev.spread(list(range(10)), 3) == [0, 3, 6]
    assert ev.spread(list(range(3)), None) == [0, 1, 2]


def test_heldout_gaps_are_whole_lines():
    text = "import os\n\n\ndef f(x):\n    y = x + 1\n    return y\n"
    tasks = ev.heldout_tasks([("pkg/m.py", text)], 5, seed=1)
    for task in tasks:
        assert task.parts[0] + task.solutions[0] + task.parts[1] == text
        assert task.solutions[0].endswith("\n") and task.solutions[0].strip()


def test_heldout_line_gaps_are_a_line_after_its_indentation():
    text = "import os\n\n\ndef f(x):\n    y = x + 1\n    return y"
    tasks = ev.heldout_line_tasks([("pkg/m.py", text)], 8, seed=1)
    assert {t.solutions[0] for t in tasks} <= {"import os", "def f(x):", "y = x + 1", "return y"}
    for task in tasks:
        prompt, suffix = task.parts
        assert prompt + task.solutions[0] + suffix == text
        assert prompt == "" or prompt.endswith(("\n", "    ")) and suffix[:1] in ("\n", "")


def test_harness_end_to_end_on_two_tasks(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    record = {
        "task_id": "SingleLineInfilling/Toy/0/L0",
        "prompt": TASK.parts[0],
        "suffix": TASK.parts[1],
        "canonical_solution": TASK.solutions[0],
        "test": TASK.test,
        "entry_point": TASK.entry_point,
    }
    import gzip

    with gzip.open(data / ev.SET_FILES["single-line"], "wt") as f:
        for i in range(2):
            f.write(json.dumps({**record, "task_id": f"SingleLineInfilling/Toy/{i}/L0"}) + "\n")
    out = tmp_path / "report.json"
    argv = ["--model", str(tiny_model_dir), "--device-map", "cpu", "--data", str(data), "--limit", "2",
            "--max-passes", "4", "--slot-budget", "4", "--no-progress", "--out", str(out)]
    assert ev.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    single = summary["sets"]["single-line"]
    assert single["tasks"] == 2
    assert 0.0 <= single["pass_at_1"] <= 1.0
    for key in ("exact_match", "parse_rate", "seconds_per_task", "tokens_per_pass", "seconds_p95"):
        assert isinstance(single[key], (int, float))
    assert summary["settings"]["max_passes"] == 4
    assert len(json.loads(out.read_text())["tasks"]["single-line"]) == 2


def test_missing_data_is_one_line_error(tmp_path, capsys):
    assert ev.main(["--data", str(tmp_path), "--limit", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("values,expected", [([], 0.0), ([1.0], 1.0), ([float(i) for i in range(1, 21)], 19.0)])
def test_percentile_nearest_rank(values, expected):
    assert ev.percentile(values, 95) == expected


def test_missing_heldout_split_is_a_clear_error(tmp_path):
    with pytest.raises(ev.EvalError, match="held-out split"):
        ev.heldout_files(tmp_path)


def test_obvious_set_is_one_line_gaps_that_compile_when_filled():
    tasks = ev.load_set(ev.OBVIOUS)
    assert len(tasks) >= 40 and len({t.task_id for t in tasks}) == len(tasks)
    for task in tasks:
        solution = task.solutions[0]
        assert solution.strip() and "\n" not in solution
        assert ev.compiles(task.parts[0] + solution + task.parts[1]), task.task_id


def test_compiles_rejects_what_tree_sitter_accepts():
    empty_body = "def f():\n    # todo\n"  # tree-sitter's Python grammar accepts it
    assert not ev.compiles(empty_body)
    assert not ev.compiles("x = 1\0")  # a null byte is a ValueError in compile(), not a crash
    assert ev.compiles("def f():\n    return 1\n")


def test_summary_reports_compile_rate_and_length_ratio():
    def result(compiles: bool, fill: int, true: int) -> ev.TaskResult:
        return ev.TaskResult("t", ["x"], False, True, compiles, fill, true, None, "untested", 0.1, 2, fill)

    summary = ev.summarize("s", [result(True, 2, 4), result(False, 4, 4)])
    assert summary.compile_rate == 0.5
    assert summary.length_ratio == 0.75  # 6 fill tokens for 8 true ones
