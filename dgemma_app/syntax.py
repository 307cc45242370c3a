"""Syntax checks for filled code: which language a file is (by name, extension or `detect`), where it fails to
parse, how to rank fills.

tree-sitter is error-tolerant, so a broken file still yields a tree; its ERROR and MISSING nodes tell
the user *where* a fill went wrong. Its Python grammar is looser than CPython (it accepts an empty
block body), so Python that tree-sitter accepts is confirmed with CPython's compile(), never run. Positions are reported 1-based and counted in characters,
because that is what editors show (tree-sitter itself counts bytes). Grammars load on first use, so
importing this module is cheap. Nothing here knows about models or the UI.
"""
from __future__ import annotations

import functools
import math
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import tree_sitter

from .detect import Detection, detect_language
from .grammars import LANGUAGES, TEXT, error_nodes, parser

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".txt": TEXT, ".md": TEXT, ".rst": TEXT,
}

_ALIASES: dict[str, str] = {
    "py": "python", "python3": "python",
    "js": "javascript", "jsx": "javascript", "node": "javascript",
    "ts": "typescript",
    "golang": "go",
    "rs": "rust",
    "c++": "cpp", "cxx": "cpp", "cc": "cpp",
    "prose": TEXT, "plain": TEXT, "txt": TEXT, "markdown": TEXT, "md": TEXT,
}

_SNIPPET_CHARS = 40


class UnknownLanguageError(ValueError):
    """The language could not be determined; the message lists the choices (each front-end says how to pick one)."""


@dataclass(frozen=True)
class ParseIssue:
    """One place where the file does not parse.

    Positions are 1-based characters; (end_line, end_column) is just past the issue, so a MISSING
    token has equal start and end. `text` is a snippet of an ERROR or the token that is MISSING.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    kind: str  # "ERROR" | "MISSING" from tree-sitter; CPython's exception name ("SyntaxError", "IndentationError", ...)
    text: str
    in_fill: bool


@dataclass
class ParseReport:
    """The outcome of checking one candidate file."""

    language: str
    checked: bool
    parses: bool
    issues: list[ParseIssue] = field(default_factory=list)
    errors_before: int | None = None
    new_errors: bool = False
    checked_by: str = ""  # what the verdict covers, in words


    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and the UI."""
        return asdict(self)


def _choices() -> str:
    return ", ".join(LANGUAGES)


def _canonical(name: str) -> str:
    """Resolve a user-typed language name or alias, case-insensitively."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LANGUAGES:
        raise UnknownLanguageError(f"Unknown language {name!r}; the languages are {_choices()}.")
    return key


def language_for(path: str | None, explicit: str | None) -> str:
    """The language to check a file as: an explicit choice wins, else the file extension."""
    if explicit is not None and explicit.strip():
        return _canonical(explicit)
    ext = os.path.splitext(path or "")[1].lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    where = f"{path!r}" if path else "input without a file name"
    raise UnknownLanguageError(f"Cannot tell the language of {where} from its name; the languages are {_choices()}.")


AUTO = "auto"  # the choice that detects the language from the text


def detects(path: str | None, explicit: str | None) -> bool:
    """Whether the language comes from the text: `auto` was chosen, or nothing for text without a file name."""
    choice = (explicit or "").strip().lower()
    return choice == AUTO or not choice and path is None


def language_of(text: str, path: str | None, explicit: str | None) -> tuple[str, Detection | None]:
    """The language to check `text` as, and the detection when it came from the text (for the user to see):
    see `detects`, else `language_for`. Raises UnknownLanguageError; each front-end adds how to pick one."""
    if not detects(path, explicit):
        return language_for(path, explicit), None
    detection = detect_language(text)
    if detection.language is None:
        raise UnknownLanguageError(f"Could not tell the language from the text ({detection.reason}).")
    return detection.language, detection


# UTF-8 continuation bytes: deleting them leaves one byte per character.
_CONTINUATION = bytes(range(0x80, 0xC0))


class _Positions:
    """Turns tree-sitter (row, byte column) points into character positions."""

    def __init__(self, text: str, data: bytes) -> None:
        self._lines = data.split(b"\n")
        self._ascii = [line.isascii() for line in self._lines]  # byte column == character column there
        self._line_starts = [0]
        for line in text.split("\n"):
            self._line_starts.append(self._line_starts[-1] + len(line) + 1)

    def column(self, point: tree_sitter.Point) -> int:
        """0-based character column of a point."""
        row = min(point.row, len(self._lines) - 1)
        if self._ascii[row]:
            return point.column
        return len(self._lines[row][: point.column].translate(None, _CONTINUATION))

    def offset(self, point: tree_sitter.Point) -> int:
        """0-based character offset of a point in the whole text."""
        row = min(point.row, len(self._lines) - 1)
        return self._line_starts[row] + self.column(point)


def _snippet(node: tree_sitter.Node, data: bytes) -> str:
    """What to show for an issue: the missing token, or the first line of the broken code."""
    if node.is_missing:
        return node.type
    raw = data[node.start_byte : node.end_byte].decode("utf-8", "replace").strip()
    first = raw.split("\n", 1)[0]
    return first if len(first) <= _SNIPPET_CHARS and first == raw else first[:_SNIPPET_CHARS] + "…"


def _touches(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """True when [start, end) overlaps or touches any span."""
    return any(start <= span_end and span_start <= end for span_start, span_end in spans)


def checked_by(language: str) -> str:
    """What a verdict for `language` covers, so "parses" is not read as "compiles"."""
    if language == TEXT:
        return "not checked: prose has no grammar"
    if language == "python":
        return "tree-sitter's python grammar, then CPython's compile(), never run"
    return f"tree-sitter's {language} grammar only, not a compiler"


_COMPILE_LOCK = threading.Lock()
_Point = tuple[int, int]  # (line, column), 1-based characters


def compile_error(text: str) -> tuple[str, str, _Point | None, _Point | None] | None:
    """CPython's objection to `text` as (kind, message, start, end), or None; a point may be unknown.

    Warnings about the user's code are silenced: they are not ours to print, and under an "error"
    filter they would become SyntaxErrors. catch_warnings changes process state, hence the lock."""
    try:
        with _COMPILE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<fill>", "exec", dont_inherit=True)
    except SyntaxError as err:  # IndentationError and TabError too
        if err.lineno is None and "\0" in text:  # "cannot contain null bytes" comes without a place
            return type(err).__name__, err.msg, *_char_at(text, text.index("\0"))
        start = (err.lineno, err.offset) if err.lineno and err.offset else None
        end = (err.end_lineno, err.end_offset) if err.end_lineno and err.end_offset and err.end_offset > 0 else None
        if err.text is None:  # the compiler's own errors (after parsing) count UTF-8 bytes, the parser's characters
            start, end = _from_bytes(text, start), _from_bytes(text, end)
        return type(err).__name__, err.msg, start, end
    except UnicodeEncodeError as err:  # a lone surrogate
        return type(err).__name__, err.reason, *_char_at(text, err.start)
    except ValueError as err:  # null bytes, in older Pythons
        return type(err).__name__, str(err), *_char_at(text, max(text.find("\0"), 0))
    except (RecursionError, MemoryError) as err:
        return type(err).__name__, "too deeply nested for CPython's compiler", None, None
    return None


def _from_bytes(text: str, point: _Point | None) -> _Point | None:
    """A (line, UTF-8 byte column) point as (line, character column)."""
    lines = text.split("\n")
    if point is None or not 1 <= point[0] <= len(lines):
        return point
    head = lines[point[0] - 1].encode("utf-8", "surrogatepass")[: point[1] - 1]
    return point[0], len(head.decode("utf-8", "ignore")) + 1


def _char_at(text: str, offset: int) -> tuple[_Point, _Point]:
    """Start and end (line, column) of the character at `offset`."""
    line, column = text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)
    return (line, column), (line, column + 1)


def _compile_issues(text: str, fill_spans: Sequence[tuple[int, int]]) -> list[ParseIssue]:
    """CPython's verdict on Python that tree-sitter accepted, as at most one issue. Its points are
    clamped into the text (an error at the end of the file sits past the last character); an unknown
    or earlier end is the start."""
    error = compile_error(text)
    if error is None:
        return []
    kind, message, start, end = error
    lines = text.split("\n")

    def place(point: _Point | None) -> tuple[_Point, int]:
        """A point clamped into the text, and its character offset."""
        row = min(max(point[0] if point else 1, 1), len(lines))
        column = min(max(point[1] if point else 1, 1), len(lines[row - 1]) + 1)
        return (row, column), sum(len(line) + 1 for line in lines[: row - 1]) + column - 1

    (line, column), start_offset = place(start)
    (end_line, end_column), end_offset = place(end or start)
    if end_offset < start_offset:
        (end_line, end_column), end_offset = (line, column), start_offset
    return [
        ParseIssue(
            line=line, column=column, end_line=end_line, end_column=end_column, kind=kind, text=message,
            in_fill=_touches(start_offset, end_offset, fill_spans),
        )
    ]


def _issues(text: str, language: str, fill_spans: Sequence[tuple[int, int]]) -> list[ParseIssue]:
    """Every issue in `text`; surrogatepass keeps odd Unicode parseable instead of raising."""
    data = text.encode("utf-8", "surrogatepass")
    root = parser(language).parse(data).root_node
    if not root.has_error:
        return _compile_issues(text, fill_spans) if language == "python" else []
    positions = _Positions(text, data)
    issues = []
    for node in error_nodes(root):
        start, end = node.start_point, node.end_point
        issues.append(
            ParseIssue(
                line=start.row + 1,
                column=positions.column(start) + 1,
                end_line=end.row + 1,
                end_column=positions.column(end) + 1,
                kind="MISSING" if node.is_missing else "ERROR",
                text=_snippet(node, data),
                in_fill=_touches(positions.offset(start), positions.offset(end), fill_spans),
            )
        )
    return issues


@functools.lru_cache(maxsize=4)
def _issue_count(text: str, language: str) -> int:
    """Issues in an unfilled input; cached because every candidate of a fill compares against it."""
    return len(_issues(text, language, ()))


def parse_report(
    text: str,
    language: str,
    fill_spans: Sequence[tuple[int, int]] = (),
    original: str | None = None,
) -> ParseReport:
    """Check a filled file. `fill_spans` are [start, end) character offsets of the fills in `text`;
    `original` is the input with the gaps removed, parsed to tell new errors from old ones."""
    language = _canonical(language)
    if language == TEXT:
        return ParseReport(language=language, checked=False, parses=True, checked_by=checked_by(language))
    issues = _issues(text, language, fill_spans)
    errors_before = None if original is None else _issue_count(original, language)
    new_errors = any(issue.in_fill for issue in issues) or (
        errors_before is not None and len(issues) > errors_before
    )
    return ParseReport(
        language=language,
        checked=True,
        parses=not issues,
        issues=issues,
        errors_before=errors_before,
        new_errors=new_errors,
        checked_by=checked_by(language),
    )


def _confidence(value: float) -> float:
    """NaN would make sorting meaningless, so it counts as no confidence."""
    return value if not math.isnan(value) else -math.inf


def rank_key(report: ParseReport, mean_confidence: float) -> tuple[bool, int, float]:
    """Sort key (ascending = best first): no new errors, then fewer issues, then more confident."""
    return (report.new_errors, len(report.issues), -_confidence(mean_confidence))


def new_error_count(report: ParseReport) -> int:
    """Issues in fills, or the growth in count when that is larger (a fill can break code elsewhere)."""
    in_fill = sum(issue.in_fill for issue in report.issues)
    added = 0 if report.errors_before is None else len(report.issues) - report.errors_before
    return max(in_fill, added, 1)


def rank_reason(report: ParseReport, mean_confidence: float) -> str:
    """One sentence saying why a candidate ranks where it does."""
    confidence = f"confidence {mean_confidence:.2f}"
    if not report.checked:
        return f"not checked ({report.language}), {confidence}"
    if report.parses:
        return f"parses, {confidence}"
    if report.new_errors:
        count = new_error_count(report)
        first = next((i for i in report.issues if i.in_fill), report.issues[0])
        noun = "error" if count == 1 else "errors"
        return f"{count} new {noun} (line {first.line}), {confidence}"
    count = len(report.issues)
    noun = "error" if count == 1 else "errors"
    return f"{count} {noun}, none new (line {report.issues[0].line}), {confidence}"
