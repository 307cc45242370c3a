"""Tests for dgemma_app.syntax against the real tree-sitter grammars."""
from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from dgemma_app.syntax import (
    EXTENSIONS,
    LANGUAGES,
    ParseIssue,
    ParseReport,
    UnknownLanguageError,
    checked_by,
    language_for,
    parse_report,
    rank_key,
    rank_reason,
)

GRAMMARS = [lang for lang in LANGUAGES if lang != "text"]

VALID = {
    "python": "def add(a, b):\n    return a + b\n",
    "javascript": "function add(a, b) {\n  return a + b;\n}\n",
    "typescript": "function add(a: number, b: number): number {\n  return a + b;\n}\n",
    "tsx": "const App = (p: { name: string }) => <div>{p.name}</div>;\n",
    "go": "package main\n\nfunc add(a, b int) int {\n\treturn a + b\n}\n",
    "rust": "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    "java": "class A {\n    int add(int a, int b) {\n        return a + b;\n    }\n}\n",
    "c": "int add(int a, int b) {\n    return a + b;\n}\n",
    "cpp": "#include <vector>\nint add(int a, int b) {\n    return a + b;\n}\n",
}

# language -> (broken source, (kind, line, column, text) of its first issue)
BROKEN = {
    "python": ("x = 1\ny = (2 +\n", ("ERROR", 2, 1, "y = (2 +")),
    "javascript": ("const a = 1;\nconst b = ;\n", ("ERROR", 2, 9, "=")),
    "typescript": ("let a: number = 1;\nlet b: = 2;\n", ("ERROR", 2, 6, ":")),
    "tsx": ("const a = <div>hi</div>;\nconst b = <div>;\n", ("ERROR", 2, 1, "const b = <div>;")),
    "go": ("package main\n\nfunc main() {\n\tx := 1 +\n}\n", ("ERROR", 4, 9, "+")),
    "rust": ("fn main() {\n    let x = 1\n}\n", ("MISSING", 2, 14, ";")),
    "java": ("class A {\n    void f() {\n        int x = 1\n    }\n}\n", ("MISSING", 3, 18, ";")),
    "c": ("int main(void) {\n    int x = 1\n    return x;\n}\n", ("MISSING", 2, 14, ";")),
    "cpp": ("int main() {\n    int x = 1\n    return x;\n}\n", ("MISSING", 2, 14, ";")),
}


def test_every_grammar_has_cases():
    assert set(VALID) == set(BROKEN) == set(GRAMMARS)


@pytest.mark.parametrize("lang", GRAMMARS)
def test_valid_snippet_parses(lang):
    report = parse_report(VALID[lang], lang)
    assert report == ParseReport(language=lang, checked=True, parses=True, issues=[], checked_by=checked_by(lang))


@pytest.mark.parametrize("lang", GRAMMARS)
def test_broken_snippet_is_located(lang):
    source, (kind, line, column, text) = BROKEN[lang]
    report = parse_report(source, lang)
    assert report.checked and not report.parses
    first = report.issues[0]
    assert (first.kind, first.line, first.column, first.text) == (kind, line, column, text)


def test_missing_token_in_python():
    [issue] = parse_report("def f(:\n    pass\n", "python").issues
    assert issue == ParseIssue(1, 7, 1, 7, "MISSING", ")", in_fill=False)


def test_several_issues_in_order_without_nested_duplicates():
    source = "int a = 1\nint b = 2\nint c = ;\n"
    issues = parse_report(source, "c").issues
    assert [(i.kind, i.line, i.column, i.text) for i in issues] == [
        ("MISSING", 1, 10, ";"),
        ("MISSING", 2, 10, ";"),
        ("MISSING", 3, 8, "identifier"),
    ]


def test_error_children_are_not_reported_separately():
    source = "a = 1\nb = (\nc = 2\ndef g(:\n  pass\nx = ]\n"
    issues = parse_report(source, "python").issues
    spans = [((i.line, i.column), (i.end_line, i.end_column)) for i in issues]
    assert spans == sorted(spans)
    for (start, end), (next_start, _) in zip(spans, spans[1:]):
        assert end <= next_start  # no issue lies inside another


def test_multiline_error_snippet_is_shortened():
    [issue] = parse_report("a = 1\nb = (\nc = 2\n", "python").issues
    assert (issue.line, issue.end_line) == (2, 3)
    assert issue.text.endswith("…") and "\n" not in issue.text


@pytest.mark.parametrize(
    ("lang", "source", "position"),
    [
        # 3 CJK characters are 9 bytes: byte counting would say column 28.
        ("javascript", "const s = '日本語'; let = ;\n", (1, 22, 1, 23)),
        # an emoji is one character but four bytes.
        ("javascript", "const s = '😀'; let = ;\n", (1, 20, 1, 21)),
        ("javascript", "// ü\nconst ü = 'é'; let = ;\n", (2, 20, 2, 21)),
        ("c", 'char *s = "日本語"; int x = 1\n', (1, 27, 1, 27)),
        ("python", "s = ('é', 'é'))\n", (1, 1, 1, 16)),
    ],
)
def test_columns_count_characters_not_bytes(lang, source, position):
    issue = parse_report(source, lang).issues[0]
    assert (issue.line, issue.column, issue.end_line, issue.end_column) == position


SOURCE = "let a = 1;\nlet = ;\nlet c = 3;\n"  # the issue is the "=" at offset 15
EQUALS = SOURCE.index("let = ;") + 4


@pytest.mark.parametrize(
    ("spans", "in_fill"),
    [
        ([], False),
        ([(0, 10)], False),
        ([(EQUALS, EQUALS + 1)], True),
        ([(EQUALS - 3, EQUALS)], True),  # ends where the issue starts: touching counts
        ([(EQUALS + 1, EQUALS + 4)], True),  # starts where the issue ends
        ([(EQUALS + 3, len(SOURCE))], False),
        ([(0, 2), (12, 16)], True),
    ],
)
def test_in_fill(spans, in_fill):
    [issue] = parse_report(SOURCE, "javascript", fill_spans=spans).issues
    assert issue.in_fill is in_fill


def test_in_fill_uses_character_offsets():
    source = "const s = '日本語日本語日本語'; let = ;\n"
    at = source.index("= ;")  # the byte offset would be 18 further on
    report = parse_report(source, "javascript", fill_spans=[(at, at + 1)])
    assert [i.in_fill for i in report.issues] == [True]
    report = parse_report(source, "javascript", fill_spans=[(at + 18, at + 19)])
    assert [i.in_fill for i in report.issues] == [False]


def test_missing_token_touching_a_fill_is_in_fill():
    source = "int main(void) {\n    int x = 1\n    return x;\n}\n"
    fill = (source.index("1"), source.index("1") + 1)  # the fill "1" should have ended with ";"
    [issue] = parse_report(source, "c", fill_spans=[fill]).issues
    assert issue.kind == "MISSING" and issue.in_fill


def test_no_original_means_no_baseline():
    report = parse_report("let = ;\n", "javascript")
    assert report.errors_before is None and not report.new_errors


def test_old_error_outside_fill_is_not_new():
    original = "let = ;\nlet b = ;\n"
    filled = "let = ;\nlet b = 2;\n"
    fill = (filled.index("2"), filled.index("2") + 1)
    report = parse_report(filled, "javascript", fill_spans=[fill], original=original)
    assert report.errors_before == 2
    assert len(report.issues) == 1 and not report.new_errors


def test_same_error_count_as_before_is_not_new():
    filled = "let = ;\nlet b = 2;\n"
    fill = (filled.index("2"), filled.index("2") + 1)
    report = parse_report(filled, "javascript", fill_spans=[fill], original="let = ;\nlet b;\n")
    assert report.errors_before == len(report.issues) == 1
    assert not report.new_errors


def test_error_in_fill_is_new():
    filled = "let a = 1;\nlet b = (;\n"
    fill = (filled.index("("), filled.index("(") + 1)
    report = parse_report(filled, "javascript", fill_spans=[fill], original="let a = 1;\nlet b = ;\n")
    assert report.errors_before == 1
    assert report.new_errors and any(i.in_fill for i in report.issues)


def test_more_errors_than_before_is_new_even_outside_fills():
    report = parse_report("let = ;\nlet = ;\n", "javascript", original="let a = 1;\n")
    assert report.errors_before == 0 and len(report.issues) == 2 and report.new_errors


def test_text_is_not_checked():
    report = parse_report("def f(:\n )))", "text", fill_spans=[(0, 3)], original="((")
    assert report == ParseReport(language="text", checked=False, parses=True, issues=[], checked_by=checked_by("text"))


def test_aliases_accepted_and_unknown_rejected_by_parse_report():
    assert parse_report("x = 1\n", "PY").language == "python"
    with pytest.raises(UnknownLanguageError):
        parse_report("x", "cobol")


def test_to_dict_is_plain_json():
    report = parse_report("def f(:\n    pass\n", "python", fill_spans=[(5, 7)], original="def f\n")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["language"] == "python" and data["parses"] is False
    assert data["issues"][0] == {
        "line": 1, "column": 7, "end_line": 1, "end_column": 7,
        "kind": "MISSING", "text": ")", "in_fill": True,
    }


def _junk(seed: int, size: int) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.choice([rng.randrange(0, 0x80), rng.randrange(0, 0x110000)])) for _ in range(size))


ODD_INPUTS = {
    "empty": "",
    "nul and controls": "\x00\x01\x1b[0m\x7f\r\n\r\x0c",
    "lone surrogates": "x = '\ud800'\n\udfff(",
    "unicode junk": _junk(1, 3000),
    "bytes as latin-1": bytes(random.Random(2).randrange(256) for _ in range(3000)).decode("latin-1"),
    "one MiB": "a" * (1 << 20),
    "deep nesting": "(" * 5000 + "[" * 5000,
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", ODD_INPUTS)
def test_odd_input_never_raises(lang, name):
    text = ODD_INPUTS[name]
    report = parse_report(text, lang, fill_spans=[(0, 1), (10**9, 10**9 + 5)], original=text[:100])
    lines = text.count("\n") + 1
    for issue in report.issues:
        assert 1 <= issue.line <= issue.end_line <= lines
        assert issue.column >= 1 and issue.end_column >= 1
    assert report.parses == (not report.issues)
    json.dumps(report.to_dict())


def test_parsing_from_many_threads():
    def check(i: int) -> int:
        return len(parse_report(BROKEN["c"][0] * (i % 5 + 1), "c").issues)

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(check, range(64)))
    assert counts == [i % 5 + 1 for i in range(64)]


@pytest.mark.parametrize(("path", "lang"), sorted(EXTENSIONS.items()))
def test_language_for_extensions(path, lang):
    assert language_for(f"src/file{path}", None) == lang


@pytest.mark.parametrize(
    ("path", "explicit", "lang"),
    [
        ("a/B.PY", None, "python"),
        ("x.tsx", None, "tsx"),
        ("x.h", None, "c"),
        ("x.hpp", None, "cpp"),
        ("notes.md", None, "text"),
        (None, "py", "python"),
        (None, " JS ", "javascript"),
        (None, "ts", "typescript"),
        (None, "C++", "cpp"),
        (None, "golang", "go"),
        (None, "rs", "rust"),
        (None, "prose", "text"),
        (None, "Java", "java"),
        ("main.c", "cpp", "cpp"),  # explicit wins over the extension
        ("main.rs", "", "rust"),  # an empty choice is no choice
        ("Makefile", "go", "go"),
    ],
)
def test_language_for_resolution(path, explicit, lang):
    assert language_for(path, explicit) == lang


@pytest.mark.parametrize(
    ("path", "explicit"),
    [("Makefile", None), (None, None), ("x.unknownext", None), ("", None), ("a.py", "cobol")],
)
def test_language_for_unknown(path, explicit):
    with pytest.raises(UnknownLanguageError) as info:
        language_for(path, explicit)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "--" not in message  # no front-end's flag: the CLI and the page each add how to pick one
    assert all(lang in message for lang in LANGUAGES)


def _report(issues: int, new: bool) -> ParseReport:
    issue = ParseIssue(3, 1, 3, 2, "ERROR", "x", in_fill=new)
    return ParseReport("python", True, issues == 0, [issue] * issues, errors_before=0 if new else issues, new_errors=new)


def test_rank_order():
    candidates = {
        "new error, confident": (_report(1, True), 0.99),
        "parses, unsure": (_report(0, False), 0.2),
        "parses, sure": (_report(0, False), 0.9),
        "old errors": (_report(2, False), 0.95),
        "old error": (_report(1, False), 0.1),
        "two new errors": (_report(2, True), 0.99),
    }
    ranked = sorted(candidates, key=lambda name: rank_key(*candidates[name]))
    assert ranked == [
        "parses, sure", "parses, unsure", "old error", "old errors",
        "new error, confident", "two new errors",
    ]


def test_rank_key_nan_confidence_sorts_last():
    good = _report(0, False)
    keys = sorted([rank_key(good, float("nan")), rank_key(good, 0.1)])
    assert keys[0] == rank_key(good, 0.1)


def test_rank_reason():
    assert rank_reason(parse_report("x = 1\n", "python"), 0.834) == "parses, confidence 0.83"
    filled = "a = 1\nb = (\n"
    report = parse_report(filled, "python", fill_spans=[(10, 11)], original="a = 1\nb = 2\n")
    assert rank_reason(report, 0.61) == "1 new error (line 2), confidence 0.61"
    assert rank_reason(_report(2, True), 0.5) == "2 new errors (line 3), confidence 0.50"
    assert rank_reason(_report(2, False), 0.5) == "2 errors, none new (line 3), confidence 0.50"
    assert rank_reason(parse_report("hi", "text"), 0.7) == "not checked (text), confidence 0.70"
