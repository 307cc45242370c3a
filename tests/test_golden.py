"""Golden fills: fixed tiny model, fixed inputs and seeds, through the public `fill --json --trace` command.

The expected output in tests/golden/fills.json was recorded by the code before the engine/backend refactor
(issue 11); any change to filled text, ranking, passes or the trace shows up here. Regenerate on purpose
only: `python -m tests.golden.generate`. Floats are compared to 1e-3 (other CPUs round differently).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dgemma_app import cli

GOLDEN = Path(__file__).resolve().parent / "golden" / "fills.json"
TIMING = ("seconds", "tokens_per_second")  # wall-clock figures differ from run to run
STACK = (
    'class Stack:\n    """A last-in, first-out stack."""\n\n    def __init__(self):\n        self.items = []\n\n'
    "    def push(self, item):\n        <FILL>\n\n    def pop(self):\n        return <FILL:8>\n"
)
CASES: dict[str, tuple[str, str, list[str]]] = {  # name -> (file name, text, extra flags)
    "python": ("a.py", "def add(a, b):\n    return <FILL>\n", ["--candidates", "2"]),
    "javascript": (
        "a.js",
        "function clamp(v, lo, hi) {\n  if (v < lo) {\n    return <FILL:4>;\n  }\n  return Math.min(v, hi);\n}\n",
        ["--candidates", "1", "--seed", "3"],
    ),
    "two_gaps": ("stack.py", STACK, ["--candidates", "3", "--seed", "1"]),
    "edit": (
        "edit.py",
        "def mean(values):\n    <EDIT>total = 0\n    for v in values:\n        total = total + v</EDIT>\n    return total / len(values)\n",
        ["--strength", "0.5", "--candidates", "2"],
    ),
    "long_multi_window": (
        "long.py",
        "".join(f"line_{i} = {i}\n" for i in range(60)) + "a = <FILL:4>\n" + "".join(f"v{i} = {i}\n" for i in range(12)) + "b = <FILL:20>\nkeep = 1\n",
        ["--candidates", "2", "--seed", "5"],
    ),
    "left_to_right": ("ltr.py", "y = <FILL:5>\nz = 2\n", ["--left-to-right", "--candidates", "1", "--max-passes", "48"]),
    "left_to_right_exact": ("exact.py", "a = <FILL:5>\n", ["--left-to-right", "--exact-length", "--candidates", "1", "--max-passes", "48"]),
    "prose": ("p.txt", "A diffusion model writes a whole draft at once. <FILL:12> It reads both sides.\n", ["--candidates", "2", "--seed", "2"]),
}
BASE_FLAGS = [  # every sampler knob given, so the model's generation_config.json does not matter
    "--max-passes", "6", "--entropy-bound", "0.1", "--t-max", "0.8", "--t-min", "0.4", "--stability", "1",
    "--confidence", "0.005", "--seed", "0", "--slot-budget", "16", "--strength", "0.5", "--threads", "1", "--no-one-line",
]


def run_case(model_dir: Path, folder: Path, name: str, capsys) -> dict:
    """The JSON `fill --json --trace` prints for one case, timing left out."""
    file_name, text, flags = CASES[name]
    source = folder / file_name
    source.write_text(text, encoding="utf-8")
    threads = torch.get_num_threads()
    try:
        status = cli.main(["fill", "--json", "--trace", str(source), "--model", str(model_dir), "--device-map", "cpu", *BASE_FLAGS, *flags])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert status == 0, out
    data = json.loads(out)
    for key in TIMING:
        data["stats"].pop(key)
    return data


def assert_close(got, want, where: str = "") -> None:
    """Equal, except floats within 1e-3."""
    if isinstance(want, float) or isinstance(got, float):
        assert math.isclose(got, want, abs_tol=1e-3), f"{where}: {got} != {want}"
    elif isinstance(want, dict):
        assert set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_fill_matches_the_recorded_golden_output(tiny_model_dir, tmp_path, capsys, name):
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    assert_close(run_case(tiny_model_dir, tmp_path, name, capsys), expected, name)
