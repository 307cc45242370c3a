"""Infilling as canvas inpainting, for any model family with a backend.

A window of up to `canvas_length` tokens (sized to its gap) starts at the first unfilled gap slot. Everything before it goes to the
encoder; inside it, known tokens are clamped and gap slots start as noise. Windows run left to right until
every slot is filled, each seeing the fills before it. Candidates (different slot counts or seeds) are rows of
one batch, ranked at the end; several requests (`Fill`s) can share one backend call per window step (`step`),
each with its own noise, live passes and cancel. The engine owns rows, windows, candidates, ranking, stats and
the trace; the backend found by the checkpoint's `model_type` denoises each window batch. The engine knows nothing of the UI:
it returns plain dataclasses, and the per-pass trace is data that a page or `--json` only indexes.
"""
from __future__ import annotations

import math
import threading
import time
from itertools import accumulate
from dataclasses import dataclass, field
from typing import Callable

from . import syntax
from .backends.base import AllSet, LoadedModel, PassRecord, Stream, WindowBatch, backend_for, settings_for
from .gaps import Edit, Known, Limits, Segment, give_back, parse_markers, stitch, without_gaps
from .pieces import REPLACEMENT, readable, token_bytes, whole_characters
from .results import Candidate, FillResult, FillStats, Position, TracePass
from .rows import Row, build_rows
from .settings import FillSettings, SettingsError
from .trace import position_state, settled_from, start_state

OnPass = Callable[[TracePass], None]
WINDOW_SEED = 7919  # a window's noise seed: seed + WINDOW_SEED * window
CANVAS_STEP = 8  # canvas sizes are multiples of this (see `canvas_for`)


@dataclass(frozen=True)
class FillRequest:
    """One input, parsed once: a front-end builds it before any model work; the engine only reads it."""

    text: str
    segments: list[Segment]
    language: str

    @classmethod
    def parse(cls, text: str, language: str, limits: Limits = Limits(), resolve: Callable[[str, str], str] | None = None) -> "FillRequest":
        """Markers first (an empty input says so before anything else), then the language: `resolve(text, language)`
        (a front-end's own rule, such as guessing), else the language's canonical name. Raises MarkerError /
        UnknownLanguageError with a user-facing message."""
        segments = parse_markers(text, limits.max_bytes, limits.max_markers)
        return cls(text, segments, resolve(text, language) if resolve else syntax.language_for(None, language))


# ----------------------------------------------------------------------------- windows


def canvas_for(rows: list[Row], settings: FillSettings, loaded: LoadedModel) -> int:
    """A fill's canvas: its longest marker's slots and `context_after` known tokens, rounded up to a multiple of
    `CANVAS_STEP` (fewer distinct sizes, so more fills share a call), at most the model's canvas: a one-line gap
    needs 48 positions of the model's 64, not all of them. The fill's own size, whatever shares its batch, so its
    noise and fill do not depend on the others."""
    longest = max((n for row in rows for n in row.slots), default=0)
    return min(loaded.canvas_length, max(CANVAS_STEP, math.ceil((longest + settings.context_after) / CANVAS_STEP) * CANVAS_STEP))


def _window_batch(rows: list[Row], window: int, seed: int, loaded: LoadedModel, canvas: int, notes: list[str]) -> tuple[WindowBatch, list[int]]:
    """One fill's batch for its window `window` of `canvas` tokens, and the position in each row where its canvas starts."""
    null = loaded.null_id
    limit = max(1, loaded.max_context - canvas)
    prefixes, initial, known, owner, must_fill, lead, line_end, offsets = [], [], [], [], [], [], [], []
    for row in rows:
        w = row.next_window()
        prefix = [t for t, o in zip(row.ids[:w], row.owner[:w]) if not (o >= 0 and t == null)]
        if len(prefix) > limit and row is rows[0]:
            notes.append(
                f"Window {window + 1}: the text before it is {len(prefix)} tokens; the first "
                f"{len(prefix) - limit} were left out (the model reads at most {limit})."
            )
        end = min(w + canvas, len(row.ids))
        outside = canvas - (end - w)  # canvas positions past the end of the text
        # With a filler token the end of the text is clamped to it (as in training); without one those
        # positions run free and are thrown away.
        known.append([o < 0 for o in row.owner[w:end]] + [null is not None] * outside)
        must_fill.append(row.must_fill[w:end] + [False] * outside)
        lead.append(row.lead[w:end] + [""] * outside)
        line_end.append(row.line_end[w:end] + [False] * outside)
        owner.append(row.owner[w:end] + [-1] * outside)
        initial.append(row.initial[w:end] + ([null] * outside if null is not None else [-1] * outside))
        offsets.append(w)
        prefixes.append(prefix[-limit:] or [loaded.pad_id])
    return WindowBatch([Stream(len(rows), seed + WINDOW_SEED * window)], prefixes, initial, known, owner, must_fill, lead, line_end), offsets


@dataclass
class Fill:
    """A request being filled: its rows and counters, advanced one window step at a time by `Engine.step`."""

    request: FillRequest
    settings: FillSettings
    rows: list[Row]
    canvas: int  # tokens per window (`canvas_for`)
    on_pass: OnPass | None = None
    cancel: threading.Event | None = None
    notes: list[str] = field(default_factory=list)
    windows: int = 0  # window steps run
    passes: int = 0  # decoder passes that worked on its rows
    started: float | None = None  # perf_counter at its first step

    @property
    def active(self) -> list[Row]:
        """Rows with a slot still to fill; none left = done."""
        return [r for r in self.rows if r.next_window() is not None]

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


def _write_back(row: Row, b: int, offset: int, known: list[bool], final: list[int], records: list[PassRecord], first: list[int],
                null: int | None) -> None:
    """The window's slot tokens go into the row, each with its probability at the pass it became final. A line-end
    gap holds the filler only after its line break, so its slots past the window after a filler are filler too."""
    ended = set()
    for i in range(min(len(final), len(row.ids) - offset)):
        if not known[i]:
            row.ids[offset + i] = final[i]
            row.filled[offset + i] = True
            row.confidence[offset + i] = records[first[i]].confidence[b][i]
            if row.line_end[offset + i] and final[i] == null:
                ended.add(row.owner[offset + i])
    for p in range(offset + len(final), len(row.ids)) if ended else ():
        if row.owner[p] in ended:
            row.ids[p], row.filled[p] = null, True


class Engine:
    """Fills marked text with one loaded model through its family's backend. Holds only per-model caches."""

    def __init__(self, loaded: LoadedModel):
        backend = backend_for(loaded.model_type)
        if backend is None:
            raise ValueError(f"No backend serves {loaded.model_type!r} models.")
        self.loaded = loaded
        self.backend = backend(loaded)
        self._pieces: dict[int, str] = {}
        self._bytes: dict[int, bytes | None] = {}
        # Backends may draw noise from torch's global generator, so one fill at a time keeps seeds reproducible.
        self._lock = threading.Lock()

    def settings(self, **overrides) -> FillSettings:
        """The family's settings: the checkpoint's defaults, then `overrides` (None = not given); validated."""
        return settings_for(self.loaded, **overrides)

    def piece(self, token_id: int) -> str:
        """The text of one token, cached: traces show thousands of them."""
        if token_id not in self._pieces:
            self._pieces[token_id] = self.loaded.tokenizer.decode([token_id])
        return self._pieces[token_id]

    def raw(self, token_id: int) -> bytes | None:
        """The bytes of one token, cached (asked only for tokens whose text alone is not a whole character)."""
        if token_id not in self._bytes:
            self._bytes[token_id] = token_bytes(self.loaded.tokenizer.convert_ids_to_tokens(token_id))
        return self._bytes[token_id]

    def fill(self, text: str, language: str = "text", settings: FillSettings | None = None, on_pass: OnPass | None = None,
             cancel: threading.Event | None = None, limits: Limits = Limits()) -> FillResult:
        """Parse `text` and fill it: one call for library users. Raises MarkerError / FillCancelled."""
        return self.run(FillRequest.parse(text, language, limits), settings or self.settings(), on_pass, cancel)

    def run(self, request: FillRequest, settings: FillSettings, on_pass: OnPass | None = None,
            cancel: threading.Event | None = None) -> FillResult:
        """Fill every marker of a parsed request with validated settings, alone. Raises FillCancelled."""
        fill = self.begin(request, settings, on_pass, cancel)
        while fill.active:
            self.step([fill])
        return self.finish(fill)

    def begin(self, request: FillRequest, settings: FillSettings, on_pass: OnPass | None = None,
              cancel: threading.Event | None = None) -> Fill:
        """A fill ready for its first `step`; no model work yet."""
        if not isinstance(settings, self.backend.settings):
            raise SettingsError(f"These settings are for another model family; {self.backend.title} takes {self.backend.settings.__name__}.")
        rows = build_rows(request.segments, self.loaded, settings)
        return Fill(request, settings, rows, canvas_for(rows, settings, self.loaded), on_pass, cancel)

    def step(self, fills: list[Fill]) -> None:
        """One window of every fill (equal `batch_key`s and canvases) as one backend call; each fill's rows are written back.
        A cancelled fill's passes are no longer shown; raises FillCancelled only when every fill is cancelled."""
        if len({f.canvas for f in fills}) > 1:
            raise ValueError("Fills sharing a step must have the same canvas length.")
        notes: list[list[str]] = [[] for _ in fills]  # kept only if the step succeeds, so a retried step adds none twice
        parts = [_window_batch(f.active, f.windows, f.settings.seed, self.loaded, f.canvas, n) for f, n in zip(fills, notes)]
        batch = WindowBatch.joined([b for b, _ in parts])
        rows = [row for f in fills for row in f.active]  # [B], in batch order
        offsets = [o for _, fill_offsets in parts for o in fill_offsets]
        ends = list(accumulate(len(f.active) for f in fills))
        spans = list(zip([0, *ends], ends))  # each fill's rows lo..hi-1 in the batch
        with self._lock:
            now = time.perf_counter()
            for f in fills:
                f.started = f.started or now
            start = self.backend.start(batch, fills[0].settings)  # [B, C]
            firsts = [self._trace_pass(f.windows, 0, list(start[i]), [start_state(offsets[i] + j >= len(rows[i].ids), k, s >= 0) for j, (k, s) in enumerate(zip(batch.known[i], batch.initial[i]))], None, None, None)
                      for f, (a, b) in zip(fills, spans) for i in range(a, b)]  # [B] each row's starting canvas
            shows = [self._live_view(f, rows[a], firsts[a], offsets[a], batch.known[a], a, b) for f, (a, b) in zip(fills, spans)]

            def show_live(record: PassRecord) -> None:
                for show in shows:
                    show(record)

            denoised = self.backend.denoise(batch, start, fills[0].settings, show_live, AllSet([f.cancel for f in fills]))
        for f, (a, b), fill_notes in zip(fills, spans, notes):
            for i in range(a, b):
                rows[i].trace.append(firsts[i])
                records = [r for r in denoised.passes if r.active[i]]  # the row's own passes: it may stop before the batch
                first = settled_from([r.draft[i] for r in records], [r.accepted[i] for r in records])
                for step, record in enumerate(records, start=1):
                    final = [step > k for k in first]
                    rows[i].trace.append(self._record_pass(f.windows, step, record, i, batch.known[i], offsets[i], rows[i], rows[i].trace[-1], final))
                rows[i].passes += len(records)
                _write_back(rows[i], i, offsets[i], batch.known[i], denoised.final[i], records, first, self.loaded.null_id)
            f.passes += sum(any(r.active[a:b]) for r in denoised.passes)
            f.windows += 1
            f.notes += fill_notes

    def _live_view(self, fill: Fill, row: Row, first: TracePass, offset: int, known: list[bool], lo: int, hi: int) -> Callable[[PassRecord], None]:
        """Shows a fill its passes while the batch runs: its first row (starting at `first`) stands for it;
        nothing once it is cancelled or all its rows have stopped."""
        live: list[TracePass] = []
        window = fill.windows

        def show(record: PassRecord) -> None:
            if fill.on_pass is None or fill.cancelled or not any(record.active[lo:hi]):
                return
            previous = live[-1] if live else first
            live.append(self._record_pass(window, len(live) + 1, record.rows(lo, hi), 0, known, offset, row, previous))
            fill.on_pass(live[-1])

        return show

    def finish(self, fill: Fill) -> FillResult:
        """Rank a done fill's candidates and measure it."""
        request, rows = fill.request, fill.rows
        candidates = [self._candidate(request, row, index) for index, row in enumerate(rows)]
        candidates.sort(key=lambda c: syntax.rank_key(c.report, c.confidence))
        best = candidates[0]
        now = time.perf_counter()  # a fill with nothing to denoise never started: 0 s, not a negative rounding
        stats = FillStats.of(best, now - (fill.started or now), fill.windows)
        return FillResult(best.text, best.fills, request.language, best.report, candidates, stats, fill.notes)

    def _trace_pass(self, window: int, step: int, ids: list[int], state: list[Position], previous: TracePass | None,
                    confidence: list[float] | None, entropy: list[float] | None) -> TracePass:
        before = previous.token_ids if previous is not None else ids
        return TracePass(
            window=window,
            step=step,
            token_ids=ids,
            pieces=readable(ids, self.piece, self.raw),
            state=state,
            changed=[x != y for x, y in zip(ids, before)],
            confidence=confidence or [1.0 if s is Position.KNOWN else 0.0 for s in state],
            entropy=entropy or [0.0] * len(ids),
        )

    def _record_pass(self, window: int, step: int, record: PassRecord, b: int, known: list[bool], offset: int,
                     row: Row, previous: TracePass, final: list[bool] | None = None) -> TracePass:
        """One pass of row `b`; `final` marks the positions whose token is final by now (unknown while live)."""
        final = final or [False] * len(known)
        state = [position_state(offset + i >= len(row.ids), k, a, f) for i, (k, a, f) in enumerate(zip(known, record.accepted[b], final))]
        confidence = [round(c, 4) for c in record.confidence[b]]
        entropy = [round(e, 4) for e in record.entropy[b]]
        return self._trace_pass(window, step, list(record.draft[b]), state, previous, confidence, entropy)

    def _fill_text(self, ids: list[int], keep_replacement: bool) -> str:
        """A fill's text, whole characters only: it goes into the user's file, so no U+FFFD they did not write."""
        text = self.loaded.tokenizer.decode(ids)
        return text if REPLACEMENT not in text else self.loaded.tokenizer.decode(whole_characters(ids, self.raw, keep_replacement))

    def _candidate(self, request: FillRequest, row: Row, index: int) -> Candidate:
        segments, null = request.segments, self.loaded.null_id
        fill_ids: list[list[int]] = [[] for _ in row.slots]
        for token, owner in zip(row.ids, row.owner):
            if owner >= 0 and token != null:
                fill_ids[owner].append(token)
        markers = [s for s in segments if not isinstance(s, Known)]
        fills = [s.old if isinstance(s, Edit) and slots == 0 else give_back(self._fill_text(ids, REPLACEMENT in request.text), lead, trail)
                 for s, ids, slots, lead, trail in zip(markers, fill_ids, row.slots, row.leads, row.trails)]
        text, spans = stitch(segments, fills)
        report = syntax.parse_report(text, request.language, spans, original=without_gaps(segments))
        logs = [math.log(p) for position, p in row.confidence.items() if row.ids[position] != null]
        confidence = math.exp(sum(logs) / len(logs)) if logs else 1.0  # see Candidate.confidence
        tokens = sum(map(len, fill_ids))
        return Candidate(text, fills, spans, row.slots, index, confidence, row.passes, tokens, report, syntax.rank_reason(report, confidence), row.trace)
