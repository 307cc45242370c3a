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


# ----------------------------------------------------------------------------- where a marker meets the text


def boundary_leads(segments: list[Segment]) -> list[str]:
    """Per segment, the space or newline a marker takes over from the end of the known text before it.

    Byte-level BPE joins a space (or a newline) with what follows it (`return a` is `return`, ` a`), so text
    cut just before a gap ends in a token the model never saw in front of a word; a causal LM scored the true
    fills of the obvious-gap set 1,415 nats with such cut text and 1,017 with the boundary as in training. The
    marker takes that character over: its first slot must start with it, and the fill gives it back. (A tab
    never joins a word's token, so text cut after one already ends as in training.)"""
    leads = [""] * len(segments)
    for i in range(1, len(segments)):
        before, marker = segments[i - 1], segments[i]
        if isinstance(before, Known) and not isinstance(marker, Known) and before.text[-1:] in (" ", "\n"):
            leads[i] = before.text[-1]
    return leads


def segment_texts(segments: list[Segment], leads: list[str], trails: list[str] | None = None) -> list[str]:
    """What gets tokenized per segment: known text without the character its marker took over and with the line
    break the gap before it hands over (`whole_lines`), an edit's old text with its lead; a gap has no text."""
    trails = trails or [""] * len(segments)
    texts = []
    for i, s in enumerate(segments):
        if isinstance(s, Known):
            text = (trails[i - 1] if i else "") + s.text
            texts.append(text[: len(text) - len(leads[i + 1])] if i + 1 < len(segments) else text)
        else:
            texts.append(leads[i] + s.old if isinstance(s, Edit) else "")
    return texts


def give_back(fill: str, lead: str, trail: str = "") -> str:
    """A fill without the character its marker took over from the text before it (see `boundary_leads`), with the
    line break it handed to the text after it (see `whole_lines`)."""
    return (fill[len(lead):] if lead and fill.startswith(lead) else fill) + trail


def line_ends(segments: list[Segment]) -> list[bool]:
    """Per segment, whether it is a gap that ends a line: the text after it starts a new line, or there is none.

    Such a gap is the rest of a line (`return <FILL>`, a statement on a line of its own), and a model asked for a
    line says where it ends by writing a line break; the engine lets that break end the fill (`one_line`)."""
    ends = []
    for i, segment in enumerate(segments):
        after = segments[i + 1] if i + 1 < len(segments) else None
        ends.append(isinstance(segment, Gap) and (after is None or isinstance(after, Known) and after.text.startswith(("\n", "\r\n"))))
    return ends


_INDENTED = re.compile(r"(?:\t|  )[ \t]*\S")  # a line's indentation (a tab or two spaces or more), then its text


def whole_lines(segments: list[Segment]) -> list[str]:
    """Per segment, the line break a gap of whole lines ends with ("" for any other segment): a gap that starts a
    line (nothing before it, or text ending with a break) whose text after starts with the next line's indentation,
    as a fill-in-the-middle split at line starts cuts it (`prefix\n<FILL>    next line`).

    The break that ends such a gap is the gap's own, yet the byte-level tokenizer joins a break with the indentation
    after it (`\n   `, ` return`), so the model never saw a line's indentation without its break. The gap hands
    its break to the text after it (`segment_texts`), runs as a line-end gap (`line_ends`: the break the model
    writes ends it) and gets the break back at its end (`give_back`). A gap followed by text at column 0 or after
    a single space (`<FILL>(a)`, `<FILL> = 1`) may be part of a line, so it is left as it is."""
    trails = []
    for i, segment in enumerate(segments):
        before = segments[i - 1] if i else None
        after = segments[i + 1] if i + 1 < len(segments) else None
        starts_line = before is None or isinstance(before, Known) and before.text.endswith("\n")
        whole = isinstance(segment, Gap) and starts_line and isinstance(after, Known) and _INDENTED.match(after.text)
        trails.append(("\r\n" if before is not None and before.text.endswith("\r\n") else "\n") if whole else "")
    return trails
