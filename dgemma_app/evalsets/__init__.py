"""Evaluation sets that ship with the package (plain text, read without a model).

`obvious.txt`: one-line Python gaps any programmer fills at a glance, written before any model was
trained for them and never trained on. `detect.txt`: snippets labelled with their language, for language
detection, written before detection was tuned on them. Each file's format is described at its top.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

OBVIOUS = Path(__file__).with_name("obvious.txt")
DETECT = Path(__file__).with_name("detect.txt")
GAP = "<FILL>"


class GapCase(NamedTuple):
    case_id: str
    prefix: str  # text before the gap
    suffix: str  # text after it
    solution: str  # the expected fill


def read_cases(path: Path = OBVIOUS) -> list[GapCase]:
    """Cases of a set file: `=== id`, code with one `<FILL>`, then `--- answer`; `#` lines before the first case."""
    cases, case_id, lines = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("=== "):
            case_id, lines = line[4:].strip(), []
        elif line.startswith("--- ") and case_id is not None:
            code = "".join(lines)
            if code.count(GAP) != 1:
                raise ValueError(f"{path.name}: case {case_id} needs exactly one {GAP}")
            prefix, suffix = code.split(GAP)
            cases.append(GapCase(case_id, prefix, suffix, line[4:].rstrip("\n")))
            case_id = None
        elif case_id is not None:
            lines.append(line)
    return cases


class LabelledText(NamedTuple):
    case_id: str
    language: str  # a canonical language name, "text" for prose
    text: str


def read_labelled(path: Path = DETECT) -> list[LabelledText]:
    """Cases of a labelled file: `=== id language`, then the text up to the next case; `#` lines before the first."""
    cases: list[LabelledText] = []
    for block in path.read_text(encoding="utf-8").split("\n=== ")[1:]:
        head, _, text = block.partition("\n")
        case_id, language = head.split()
        cases.append(LabelledText(case_id, language, text.rstrip("\n") + "\n"))
    return cases
