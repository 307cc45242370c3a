"""Language detection against the real tree-sitter grammars: the labelled set, the issue's hard cases, edge inputs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dgemma_app import syntax
from dgemma_app.detect import CODE, HEAD, judged, masked
from dgemma_app.evalsets import read_labelled
from dgemma_app.ui.examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]


def test_the_labelled_set_is_detected_at_least_95_percent_right():
    cases = read_labelled()
    wrong = [(c.case_id, syntax.detect_language(c.text).language) for c in cases
             if syntax.detect_language(c.text).language != c.language]
    assert len(cases) >= 60
    assert 1 - len(wrong) / len(cases) >= 0.95, wrong


def test_the_set_covers_every_language_and_shares_no_snippet_with_the_examples():
    cases = read_labelled()
    assert {c.language for c in cases} == {*CODE, syntax.TEXT}
    assert len({c.case_id for c in cases}) == len(cases)
    shown = [text for _, _, text in EXAMPLES] + [p.read_text() for p in (ROOT / "examples").iterdir()]
    for case in cases:
        assert all(case.text.strip() not in text for text in shown), case.case_id


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("for i in range(10):\n    print(<FILL>)", "python"),  # plain Python: no def, class or import
        ("x = [1, 2, 3]\nprint(x[0])\n", "python"),
        ("with open(path) as f:\n    data = f.read()\n", "python"),
        ("import os\n\ndef main():\n    print(os.getcwd())\n", "python"),
        ("def f():\n    <FILL>\n", "python"),  # a marker alone on a line is dropped, not parsed
        ("package main\n\nfunc main() {\n}\n", "go"),
        ("fn main() {\n    let mut x = 1;\n}\n", "rust"),
        ("#include <stdio.h>\nint main(void) { return 0; }\n", "c"),
        ("#include <iostream>\nint main() { std::cout << 1; }\n", "cpp"),
        ("public class Main {\n  public static void main(String[] a) {}\n}\n", "java"),
        ("const add = (a, b) => a + b;\n", "javascript"),
        ("function f() { return <FILL>; }\n", "javascript"),
        ("interface User {\n  name: string;\n}\n", "typescript"),
        ("const n: number = 1;\n", "typescript"),
        ("Write a function that returns the sum of two numbers.", "text"),  # prose mentioning code words
        ("The function of the liver is to filter the blood. <FILL> It also stores energy.", "text"),
        ("In class we import ideas; then we return home for a while.", "text"),
        ("Dear team, the release is on Friday. <FILL> Thanks!", "text"),
        ("The answer is 42.", "text"),
        ("import os", "python"),
        ('fmt.Println("hi")', "go"),  # parses in several grammars: the keyword hints decide
        ('console.log("hi")', "javascript"),
    ],
)
def test_detects(text, language):
    detection = syntax.detect_language(text)
    assert detection.language == language, detection.reason
    if language != syntax.TEXT:  # the chosen grammar fits best (ties broken by keyword hints)
        assert detection.scores[language] == max(detection.scores[lang] for lang in CODE)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "there is no text"),
        ("   \n<FILL>\n<EDIT></EDIT>", "there is no text"),
        ("hello", "too little text"),
        ("x1 <FILL> y2", "no language fits; the closest, Python, fails on 67% of the text"),
        ("yes no maybe", "no language fits"),  # words, but no sentence
        ("Hello, world!", "parses as TypeScript but holds no code symbol or keyword"),
    ],
)
def test_nothing_fits_says_why(text, reason):
    detection = syntax.detect_language(text)
    assert detection.language is None and reason in detection.reason


def test_detection_is_plain_frozen_data_with_a_reason():
    detection = syntax.detect_language("x = [1, 2, 3]\n")
    assert detection.reason == "parses as Python with no errors"
    assert set(detection.scores) == {*CODE, syntax.TEXT} and all(0 <= v <= 1 for v in detection.scores.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        detection.language = "go"  # type: ignore[misc]
    assert "prose" in syntax.detect_language("The cat sat on the warm mat and slept.").reason


def test_every_detected_example_matches_its_menu_language():
    for _, language, text in EXAMPLES:
        assert syntax.detect_language(text).language == language


def test_markers_are_masked_neutrally():
    assert masked("def f():\n    <FILL>\n") == "def f():\n    \n"  # alone on its line: gone
    assert masked("return <FILL:8>;") == "return x;"  # inside a line: an identifier
    assert masked("a = <EDIT>b</EDIT>\n") == "a = b\n"


def test_a_long_file_is_cut_before_a_comment_the_cut_would_leave_open():
    code = "int add(int a, int b) {\n    return a + b;\n}\n" * (HEAD // 80)
    licence = "/*\n" + " * Permission is granted to use, copy and modify this file.\n" * 100 + " */\n"
    assert judged(code + licence) == code
    docstring = 'def f():\n    """' + "Say what f is for.\n" * 200 + '    """\n'
    assert judged("x = [1, 2, 3]\n" * 10 + docstring) == "x = [1, 2, 3]\n" * 10 + "def f():\n    "
    assert syntax.detect_language(code + licence).language == "c"


def test_only_the_head_is_read_so_huge_input_stays_quick():
    tail_only = "The end of a long file, in plain words.\n"
    assert syntax.detect_language("\n" * (1 << 20) + tail_only).language is None  # only blank lines in the head
    assert syntax.detect_language("(" * (1 << 16)).language is None  # as deep as it is long: no recursion limit
    python = "x = [1, 2, 3]\n" * (2 * HEAD // 14)
    assert syntax.detect_language(python + "}{ ][ " * (1 << 16)).language == "python"  # garbage past the head unseen
