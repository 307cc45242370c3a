"""Python that tree-sitter accepts but CPython rejects: the verdict comes from compile(), never run."""
from __future__ import annotations

import warnings

import pytest

from dgemma_app.syntax import LANGUAGES, TEXT, ParseIssue, _compile_issues, parse_report

EMPTY_BODY = "def f():\n    # todo\n"


def test_empty_block_body_does_not_parse():
    fill = (EMPTY_BODY.index("#"), len(EMPTY_BODY) - 1)
    report = parse_report(EMPTY_BODY, "python", fill_spans=[fill], original="def f():\n    \n")
    assert not report.parses and report.new_errors
    [issue] = report.issues
    assert (issue.kind, issue.line, issue.column) == ("IndentationError", 2, 11)  # past "    # todo"
    assert issue.text.startswith("expected an indented block") and issue.in_fill


@pytest.mark.parametrize(
    ("source", "kind", "position"),
    [
        ("x = 1\nfrom __future__ import annotations\n", "SyntaxError", (2, 1, 2, 35)),
        ("return 1\n", "SyntaxError", (1, 1, 1, 9)),
        ("x = 'éé'; return 1\n", "SyntaxError", (1, 11, 1, 19)),  # columns in characters, not bytes
        ("def f():\n    nonlocal x\n", "SyntaxError", (2, 5, 2, 15)),
        ("if x:\n\tif y:\n        pass\n", "TabError", (3, 1, 3, 1)),
        ("x = 1\n    y = 2\n", "IndentationError", (2, 4, 2, 4)),
    ],
)
def test_compiler_errors_are_located(source, kind, position):
    report = parse_report(source, "python")
    [issue] = report.issues
    assert not report.parses and issue.kind == kind
    assert (issue.line, issue.column, issue.end_line, issue.end_column) == position


def test_future_imports_and_warnings_are_fine():
    source = "from __future__ import annotations\nx: undefined_name = 1 is 1\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a SyntaxWarning about the code must not turn into an error
        report = parse_report(source, "python")
    assert report.parses and report.issues == []


def test_errors_already_in_the_input_are_not_new():
    filled = "return 1\nx = 2\n"
    fill = (filled.index("2"), filled.index("2") + 1)
    report = parse_report(filled, "python", fill_spans=[fill], original="return 1\nx = \n")
    assert report.errors_before == 1 and len(report.issues) == 1
    assert not report.new_errors and not report.issues[0].in_fill


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("# a\0b\nx = 1\n", ParseIssue(1, 4, 1, 5, "SyntaxError", "source code string cannot contain null bytes", False)),
        ("x = 1\n# \ud800\n", ParseIssue(2, 3, 2, 4, "UnicodeEncodeError", "surrogates not allowed", False)),
    ],
)
def test_inputs_compile_refuses_without_a_place_are_located(source, expected):
    assert _compile_issues(source, []) == [expected]


def test_too_deep_for_the_compiler_is_an_error_not_a_crash():
    report = parse_report("x = " + "-" * 200_000 + "1\n", "python")
    [issue] = report.issues
    assert issue.kind in {"RecursionError", "MemoryError"} and (issue.line, issue.column) == (1, 1)


def test_the_report_says_what_the_check_covers():
    assert "compile()" in parse_report("x = 1\n", "python").checked_by
    for lang in set(LANGUAGES) - {"python", TEXT}:
        assert parse_report("", lang).checked_by == f"tree-sitter's {lang} grammar only, not a compiler"
    assert parse_report("prose", "text").checked_by.startswith("not checked")


def test_compiler_stage_columns_count_characters():
    # errors found after parsing come from CPython in UTF-8 bytes: 'é' is two
    [issue] = parse_report("def f(é, é): pass\n", "python").issues
    assert (issue.column, issue.end_column) == (10, 11)
