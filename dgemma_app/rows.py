"""The rows of a fill: one candidate's token sequence (known tokens and gap slots), built once from the parsed
markers before any model work. `engine` cuts windows from them and writes each window's fill back; a row's slots
carry what the backend must respect (the filler rule, a slot's leading text, line-end gaps)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .backends.base import LoadedModel
from .gaps import Edit, Gap, Known, Segment, boundary_leads, line_ends, segment_texts, whole_lines
from .results import TracePass
from .settings import FillSettings


@dataclass
class Row:
    """One candidate's token sequence while it is being filled."""

    ids: list[int]  # known tokens and slot contents
    owner: list[int]  # marker index for slots, -1 for known tokens
    filled: list[bool]  # known tokens count as filled
    initial: list[int]  # starting token of each position (noise is drawn later), -1 = noise
    must_fill: list[bool]  # never the filler: a gap's first slot (every slot of an exact-length gap)
    lead: list[str]  # a slot's token must start with this text ("" = any): see `boundary_leads`
    line_end: list[bool]  # slot of a gap whose line break ends it (`FillSettings.one_line`, `line_ends`)
    slots: list[int]  # slot count per marker
    leads: list[str]  # per marker, the character it took over from the text before it
    trails: list[str]  # per marker, the line break a whole-line gap handed to the text after it (`whole_lines`)
    passes: int = 0
    trace: list[TracePass] = field(default_factory=list)
    confidence: dict[int, float] = field(default_factory=dict)  # position -> last confidence

    def next_window(self) -> int | None:
        """Position of the first slot not yet filled, where the next window starts."""
        return next((i for i, f in enumerate(self.filled) if not f), None)


def _encode(tokenizer, text: str) -> list[int]:
    """Token ids of user text; special-token names typed by the user stay plain text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"] if text else []


def _slot_counts(segments: list[Segment], loaded: LoadedModel, settings: FillSettings, row: int, edit_lengths: list[int]) -> list[int]:
    """Slots per marker for one candidate row.

    With a `<null>` filler every row gets the full budget (the model shrinks it); without one the rows
    spread their slot counts over 1..budget, so ranking can pick the length that fits."""
    counts = []
    markers = [s for s in segments if not isinstance(s, Known)]
    for index, segment in enumerate(markers):
        if isinstance(segment, Edit):
            old = edit_lengths[index]
            counts.append(old + (max(2, old // 4) if loaded.null_id is not None else 0))
            continue
        budget = segment.size or settings.slot_budget
        if loaded.null_id is None and settings.candidates > 1:
            budget = max(1, round(budget * (row + 1) / settings.candidates))
        counts.append(budget)
    return counts


def build_rows(segments: list[Segment], loaded: LoadedModel, settings: FillSettings) -> list[Row]:
    tokenizer = loaded.tokenizer
    leads = boundary_leads(segments)
    lines = settings.one_line and loaded.null_id is not None  # a whole-line gap hands over its break only as a line gap
    trails = [t if lines and not (isinstance(s, Gap) and s.size and settings.exact_length) else "" for s, t in zip(segments, whole_lines(segments))]
    ends = [e or bool(t) for e, t in zip(line_ends(segments), trails)]
    encoded = [_encode(tokenizer, t) for t in segment_texts(segments, leads, trails)]
    # a whole-line gap's first token is the taken-over break and an indentation, like the line after it
    opens = [lead + segments[i + 1].text[0] if t and lead == "\n" else lead for i, (lead, t) in enumerate(zip(leads, trails))]
    edit_lengths = [len(e) for s, e in zip(segments, encoded) if not isinstance(s, Known)]
    generator = torch.Generator().manual_seed(settings.seed)  # edit noise: its own stream, the same for every backend
    rows = []
    for r in range(settings.candidates):
        counts = _slot_counts(segments, loaded, settings, r, edit_lengths)
        row = Row([], [], [], [], [], [], [], counts, *([x for s, x in zip(segments, xs) if not isinstance(s, Known)] for xs in (leads, trails)))
        if tokenizer.bos_token_id is not None:
            _append(row, [tokenizer.bos_token_id])
        marker = 0
        for segment, ids, lead, ends_line, first in zip(segments, encoded, leads, ends, opens):
            if isinstance(segment, Known):
                _append(row, ids)
                continue
            if isinstance(segment, Edit) and settings.edit_strength == 0:
                _append(row, ids)  # strength 0: the old text stays as it is
                row.slots[marker] = 0
            else:
                initial = _initial_slots(segment, ids, counts[marker], settings, loaded, generator)
                # a gap holds at least one token of its own: after a taken-over newline, which may be a token alone, two
                must_fill = (2 if lead == "\n" else 1) if isinstance(segment, Gap) else 0
                exact = isinstance(segment, Gap) and segment.size and settings.exact_length
                if exact:
                    must_fill = len(initial)  # <FILL:n> holds exactly n
                line_end = ends_line and settings.one_line and not exact and loaded.null_id is not None
                _append(row, initial, owner=marker, must_fill=must_fill, lead=first, line_end=line_end)
            marker += 1
        rows.append(row)
    return rows


def _append(row: Row, initial: list[int], owner: int = -1, must_fill: int = 0, lead: str = "", line_end: bool = False) -> None:
    """Add known tokens (owner -1) or one marker's slots, whose contents the windows write later; the first
    `must_fill` slots may not be the filler; the first slot's token starts with `lead`; `line_end`: see `Row`."""
    row.ids += initial if owner < 0 else [0] * len(initial)
    row.owner += [owner] * len(initial)
    row.filled += [owner < 0] * len(initial)
    row.initial += initial
    row.must_fill += [i < must_fill for i in range(len(initial))]
    row.lead += [lead if i == 0 else "" for i in range(len(initial))]
    row.line_end += [line_end] * len(initial)


def _initial_slots(segment: Gap | Edit, old_ids: list[int], count: int, settings: FillSettings, loaded: LoadedModel,
                   generator: torch.Generator) -> list[int]:
    """Starting tokens of a marker's slots: noise for gaps; for edits the old tokens (then filler), with a
    strength-sized random share turned to noise."""
    if isinstance(segment, Gap):
        return [-1] * count
    initial = old_ids + [loaded.null_id] * (count - len(old_ids))
    noisy = torch.rand(count, generator=generator) < settings.edit_strength
    return [-1 if n else s for s, n in zip(initial, noisy.tolist())]
