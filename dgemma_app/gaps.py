"""The marker syntax people type, and splitting text into known and unknown spans.

    <FILL>            a gap; the engine picks the length
    <FILL:24>         a gap of at most 24 tokens
    <EDIT>old</EDIT>  rewrite the enclosed region, seeded with the old text

Pure text handling: no model, no UI. Every problem is a `MarkerError` whose message names the
line and column, so both the CLI and the page can show it as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_INPUT_BYTES = 1 << 20  # 1 MiB
MAX_MARKERS = 256
MAX_FILL_SIZE = 4096

FILL_MARKER = "<FILL>"
# `[^<>\n]` stops a size at the next tag, so runs of unclosed `<FILL:` scan in linear time.
_MARKER_RE = re.compile(r"<FILL(?::([^<>\n]*))?>|<EDIT>|</EDIT>")


class MarkerError(ValueError):
    """The input cannot be split into gaps; the message says where and why."""


@dataclass(frozen=True)
class Limits:
    """How much one request may bring; the front-ends set them once (flags, the service) and only the parser reads them."""

    max_bytes: int = MAX_INPUT_BYTES
    max_markers: int = MAX_MARKERS


@dataclass(frozen=True)
class Known:
    text: str


@dataclass(frozen=True)
class Gap:
    size: int | None  # `<FILL:n>` gives n; `<FILL>` leaves it to the engine
    line: int
    column: int


@dataclass(frozen=True)
class Edit:
    old: str
    line: int
    column: int


Segment = Known | Gap | Edit


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def check_text(text: str, max_bytes: int = MAX_INPUT_BYTES) -> None:
    """Reject input no model should see: empty, binary, or over the size limit."""
    if not text.strip():
        raise MarkerError("The input is empty; paste some code and mark a gap with <FILL>.")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        line, column = _line_col(text, err.start)
        raise MarkerError(f"The input has an invalid character (a lone surrogate) at line {line}, column {column}; remove it.") from None
    if size > max_bytes:
        raise MarkerError(f"The input is {size:,} bytes, over the limit of {max_bytes:,} bytes; fill a smaller part of the file.")
    if "\x00" in text or sum(ch < " " and ch not in "\t\n\r\f\v" for ch in text[:65536]) > 8:
        raise MarkerError("The input looks like binary data, not text; paste source code or prose.")


def parse_markers(text: str, max_bytes: int = MAX_INPUT_BYTES, max_markers: int = MAX_MARKERS) -> list[Segment]:
    """Split `text` into Known / Gap / Edit segments, in order."""
    check_text(text, max_bytes)
    segments: list[Segment] = []
    edit_start: tuple[int, int] | None = None  # (offset of the opening tag, offset after it)
    cursor = 0
    markers = 0
    for match in _MARKER_RE.finditer(text):
        token = match.group(0)
        line, column = _line_col(text, match.start())
        where = f"line {line}, column {column}"
        if edit_start is not None and token != "</EDIT>":
            raise MarkerError(f"{token} at {where} is inside an <EDIT> region; markers cannot be nested.")
        if token == "</EDIT>":
            if edit_start is None:
                raise MarkerError(f"</EDIT> at {where} has no matching <EDIT> before it.")
            open_line, open_column = _line_col(text, edit_start[0])
            segments.append(Edit(text[edit_start[1] : match.start()], open_line, open_column))
            edit_start = None
        else:
            markers += 1
            if markers > max_markers:
                raise MarkerError(f"The input has more than {max_markers} markers; fill it in parts.")
            if match.start() > cursor:
                segments.append(Known(text[cursor : match.start()]))
            if token == "<EDIT>":
                edit_start = (match.start(), match.end())
            else:
                segments.append(Gap(_fill_size(match.group(1), where), line, column))
        cursor = match.end()
    if edit_start is not None:
        line, column = _line_col(text, edit_start[0])
        raise MarkerError(f"<EDIT> at line {line}, column {column} is never closed; add </EDIT> after the region.")
    if cursor < len(text):
        segments.append(Known(text[cursor:]))
    if not any(isinstance(s, (Gap, Edit)) for s in segments):
        raise MarkerError("No gaps found; mark one with <FILL>, <FILL:n> or <EDIT>old code</EDIT>.")
    return segments


def _fill_size(raw: str | None, where: str) -> int | None:
    if raw is None:
        return None
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_FILL_SIZE:
        raise MarkerError(f"<FILL:{raw}> at {where} needs a whole number of tokens from 1 to {MAX_FILL_SIZE}, like <FILL:24>.")
    return int(raw)


def stitch(segments: list[Segment], fills: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Put one fill per Gap/Edit back into the text; also return each fill's [start, end) span."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    offset = 0
    remaining = iter(fills)
    for segment in segments:
        piece = segment.text if isinstance(segment, Known) else next(remaining)
        if not isinstance(segment, Known):
            spans.append((offset, offset + len(piece)))
        parts.append(piece)
        offset += len(piece)
    return "".join(parts), spans


def without_gaps(segments: list[Segment]) -> str:
    """The input as it was before marking: gaps empty, edits holding their old text."""
    return stitch(segments, [s.old if isinstance(s, Edit) else "" for s in segments if not isinstance(s, Known)])[0]
