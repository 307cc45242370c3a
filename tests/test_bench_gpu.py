"""`python -m bench.gpu` proven on a CPU: the tiny shrink of the 26B-A4B architecture runs every row.

The GPU run happens once, on a lent machine with little time, so the script must work the first time there:
one real subprocess runs the whole program at `--scale tiny` and the test reads its printed tables.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu
from dgemma_app import eval as ev

ROOT = Path(__file__).resolve().parent.parent


def table_rows(output: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell (header and rule lines included, which tests never look up)."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def tiny_run() -> subprocess.CompletedProcess:
    flags = ["--scale", "tiny", "--device", "cpu", "--repeat", "1", "--threads", "1", "--fills", "3"]
    command = [sys.executable, "-m", "bench.gpu", *flags]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_tiny_run_prints_every_generate_row(tiny_run):
    assert tiny_run.returncode == 0, tiny_run.stderr[-2000:]
    out = tiny_run.stdout
    assert out.startswith("# GPU speed — ") and "torch " in out and "device cpu" in out
    assert "canvas 256" in out and "never become confident" in out and "1,000 tokens/s" in out
    rows = table_rows(out)
    default, fixed = rows["default sampler, 48-pass budget"], rows["fixed 16 passes"]
    assert int(fixed[0]) == 16  # stopping disabled: exactly the budget
    assert int(default[0]) == 48  # random weights never stop early
    for row in (default, fixed):
        first_s, median_s, tokens_per_s, ms_per_pass = map(float, row[1:5])
        assert first_s > 0 and median_s > 0 and tokens_per_s > 0 and ms_per_pass > 0
        assert tokens_per_s == pytest.approx(256 / median_s, rel=0.02)  # both printed to 3 digits
        assert row[5] == "-"  # no GPU memory on a CPU
    assert "fixed 16 passes, static cache + torch.compile" not in rows  # only with --compile


@pytest.mark.slow
def test_tiny_run_fills_with_the_embedded_model(tiny_run):
    row = table_rows(tiny_run.stdout)["dgemma-code-tiny"]
    if not (ev.DATA_DIR / ev.SET_FILES["single-line"]).is_file():
        assert row[0].startswith("failed: EvalError") and "--data" in row[0]
        return
    assert int(row[0]) == 3
    p50_s, p95_s, passes_per_fill = map(float, row[1:4])
    assert 0 < p50_s <= p95_s and passes_per_fill >= 1


def test_a_failed_build_is_one_line_per_row_and_exit_1_when_nothing_ran(monkeypatch, capsys):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 50.00 GiB\nlong details")

    monkeypatch.setattr(gpu, "build_random_model", out_of_memory)
    assert gpu.main(["--scale", "tiny", "--device", "cpu", "--skip-embedded", "--compile"]) == 1
    rows = table_rows(capsys.readouterr().out)
    labels = ("default sampler, 48-pass budget", "fixed 16 passes", "fixed 16 passes, static cache + torch.compile")
    for label in labels:
        assert rows[label][0] == "failed: OutOfMemoryError: CUDA out of memory. Tried to allocate 50.00 GiB"
