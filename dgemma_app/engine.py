"""Infilling as canvas inpainting with DiffusionGemma's own `generate`.

A window of `canvas_length` tokens starts at the first unfilled gap slot. Everything before it
goes to the encoder; inside it, known tokens are clamped by a logits processor (one possible
token: entropy 0, always accepted) and gap slots start as uniform noise. Windows run left to
right until every slot is filled, each seeing the fills before it. Candidates (different slot
counts or seeds) are rows of one batch. The engine knows nothing of the UI: it returns plain
dataclasses, and the per-pass trace is data that a page or `--json` only indexes.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
    EntropyBoundSamplerConfig,
    StableAndConfidentStoppingCriteria,
)

from . import syntax
from .gaps import Edit, Gap, Known, Segment, parse_markers, stitch, without_gaps
from .model import LoadedModel

NEG_INF = float("-inf")


class SettingsError(ValueError):
    """A sampler setting is out of range; the message names it and the allowed range."""


class FillCancelled(Exception):
    """The caller asked the fill to stop (e.g. the browser tab went away)."""


@dataclass
class FillSettings:
    """Every DiffusionGemma generation knob plus the infilling ones."""

    max_passes: int = 48
    entropy_bound: float = 0.1
    t_max: float = 0.8
    t_min: float = 0.4
    stability_threshold: int = 1
    confidence_threshold: float = 0.005
    seed: int = 0
    candidates: int = 2  # rows of one batch, ranked: 1 -> 2 lifts the embedded model's parsing fills most; each row costs compute on CPU
    slot_budget: int = 16  # slots for a <FILL> without a size
    edit_strength: float = 0.5  # share of an <EDIT>'s tokens re-noised at the start
    left_to_right: bool = False  # baseline: commit exactly one token per pass, leftmost first
    exact_length: bool = False  # <FILL:n> gets exactly n tokens: no filler, as with a model that has none

    def validate(self) -> None:
        """Raise SettingsError naming the first setting out of range."""
        checks = [
            ("max passes", self.max_passes, 1, 1024),
            ("entropy bound", self.entropy_bound, 1e-6, 1000.0),
            ("t_max", self.t_max, 1e-3, 10.0),
            ("t_min", self.t_min, 1e-3, 10.0),
            ("stability threshold", self.stability_threshold, 0, 64),
            ("confidence threshold", self.confidence_threshold, 1e-9, 100.0),
            ("seed", self.seed, 0, 2**31 - 1),
            ("candidates", self.candidates, 1, 16),
            ("slot budget", self.slot_budget, 1, 4096),
            ("edit strength", self.edit_strength, 0.0, 1.0),
        ]
        for name, value, low, high in checks:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise SettingsError(f"{name} must be a number between {low} and {high}.")
            if isinstance(low, int) and isinstance(high, int) and not float(value).is_integer():
                raise SettingsError(f"{name} is {value}; it must be a whole number between {low} and {high}.")
            if not low <= value <= high:
                raise SettingsError(f"{name} is {value}; it must be between {low} and {high}.")
        for name in ("max_passes", "stability_threshold", "seed", "candidates", "slot_budget"):
            setattr(self, name, int(getattr(self, name)))  # 12.0 from a slider is 12
        if self.t_max <= self.t_min:
            raise SettingsError(f"t_max ({self.t_max}) must be above t_min ({self.t_min}).")

    @classmethod
    def from_model(cls, loaded: LoadedModel, **overrides) -> "FillSettings":
        """Defaults from the checkpoint's generation_config.json, then the caller's overrides."""
        gen = loaded.model.generation_config
        found = {
            "max_passes": gen.max_denoising_steps,
            "entropy_bound": getattr(gen.sampler_config, "entropy_bound", None),
            "t_max": gen.t_max,
            "t_min": gen.t_min,
            "stability_threshold": gen.stability_threshold,
            "confidence_threshold": gen.confidence_threshold,
        }
        values = {k: v for k, v in found.items() if v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class TracePass:
    """One denoising pass of one window, as plain lists over canvas positions."""

    window: int
    step: int  # 0 = the starting canvas
    token_ids: list[int]
    pieces: list[str]
    state: list[str]  # "known" (clamped) | "accepted" | "noise" (re-noised after this pass) | "outside" (past the text)
    changed: list[bool]  # draft token differs from the previous pass
    confidence: list[float]  # probability of the drafted token
    entropy: list[float]  # entropy of the position's distribution (nats)

    @property
    def accepted(self) -> int:
        return sum(s == "accepted" for s in self.state)

    @property
    def mean_entropy(self) -> float:
        free = [e for e, s in zip(self.entropy, self.state) if s in ("accepted", "noise")]
        return sum(free) / len(free) if free else 0.0


@dataclass
class Candidate:
    text: str
    fills: list[str]
    fill_spans: list[tuple[int, int]]
    slots: list[int]  # slot count given to each marker
    row: int
    confidence: float  # mean probability of the fill tokens at their last pass
    passes: int
    report: syntax.ParseReport
    rank_reason: str
    trace: list[TracePass] = field(default_factory=list)

    def to_dict(self, with_trace: bool = False) -> dict:
        out = {
            "text": self.text,
            "fills": self.fills,
            "slots": self.slots,
            "confidence": round(self.confidence, 4),
            "passes": self.passes,
            "parses": self.report.parses,
            "new_errors": self.report.new_errors,
            "rank_reason": self.rank_reason,
        }
        if with_trace:
            out["trace"] = [asdict(p) for p in self.trace]
        return out


@dataclass
class FillStats:
    seconds: float
    passes: int  # decoder forward passes, over all windows
    tokens: int  # tokens in the chosen fills (filler excluded)
    tokens_per_pass: float
    tokens_per_second: float
    windows: int


@dataclass
class FillResult:
    text: str
    fills: list[str]
    language: str
    report: syntax.ParseReport
    candidates: list[Candidate]  # ranked, best first
    stats: FillStats
    notes: list[str] = field(default_factory=list)

    @property
    def trace(self) -> list[TracePass]:
        return self.candidates[0].trace

    def to_dict(self, with_trace: bool = False) -> dict:
        out = {
            "text": self.text,
            "fills": self.fills,
            "language": self.language,
            "parses": self.report.parses,
            "errors": [
                {"line": i.line, "column": i.column, "kind": i.kind, "in_fill": i.in_fill} for i in self.report.issues
            ],
            "errors_before": self.report.errors_before,
            "candidates": [c.to_dict() for c in self.candidates],
            "stats": asdict(self.stats),
            "notes": self.notes,
        }
        if with_trace:
            out["trace"] = [asdict(p) for p in self.trace]
        return out


# ----------------------------------------------------------------------------- pure maths


def temperature_at(step: torch.Tensor | int, settings: FillSettings) -> torch.Tensor | float:
    """The library's linear schedule: `step` counts the passes *remaining*, max_passes..1."""
    return settings.t_min + (settings.t_max - settings.t_min) * (step / settings.max_passes)


def entropy_bound_accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """Which positions the EntropyBoundSampler accepts: lowest-entropy first while the sum minus the max stays under `bound`."""
    sorted_entropy, order = torch.sort(entropy, dim=-1)  # [B, C]
    keep = torch.cumsum(sorted_entropy, dim=-1) - sorted_entropy <= bound
    return torch.zeros_like(keep).scatter(-1, order, keep)


def clamp_scores(
    scores: torch.Tensor,
    known: torch.Tensor,
    known_ids: torch.Tensor,
    banned: torch.Tensor,
    must_fill: torch.Tensor | None = None,
    null_id: int | None = None,
) -> torch.Tensor:
    """Known positions may only be their token; free positions may never be a banned special token; `must_fill`
    slots may not be the `<null>` filler (a marked gap holds at least one token)."""
    # scores [B, C, V]; known [B, C] bool; known_ids [B, C]; banned [V] bool; must_fill [B, C] bool
    free = scores.masked_fill(banned, NEG_INF)
    if must_fill is not None and null_id is not None:
        free[..., null_id] = free[..., null_id].masked_fill(must_fill, NEG_INF)
    forced = torch.full_like(scores, NEG_INF).scatter(-1, known_ids.unsqueeze(-1), 0.0)
    return torch.where(known.unsqueeze(-1), forced, free)


def left_to_right_commit(
    draft: torch.Tensor, known: torch.Tensor, known_ids: torch.Tensor, owner: torch.Tensor, null_id: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Baseline order, one token per pass, as an autoregressive decoder: the leftmost free slot takes its greedy
    token. A filler there is the decoder's end token: the rest of that gap becomes filler in the same pass.
    Returns the new known mask and ids."""
    # draft, known_ids, owner [B, C] (owner: marker index of a slot, -1 elsewhere); known [B, C] bool
    free = ~known
    first = free & (torch.cumsum(free.int(), dim=-1) == 1)  # [B, C]
    known_ids = torch.where(first, draft, known_ids)
    if null_id is not None:
        ended = torch.where(first & (draft == null_id), owner, -2).amax(-1, keepdim=True)  # [B, 1], -2 = no gap ended
        rest = free & (owner == ended)
        known_ids = torch.where(rest, null_id, known_ids)  # the committed slot already drafted the filler
        first = first | rest
    return known | first, known_ids


def shared_prefix_cache(model, prefix: list[int], batch: int) -> DynamicCache:
    """The encoder's KV cache of `prefix`, computed once and copied to `batch` rows.

    Candidates differ only in their canvases, so in the first window every row has the same prefix and a
    batched encoder would repeat the same work once per row."""
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.no_grad():
        model.model.encoder(input_ids=torch.tensor([prefix], device=model.device), past_key_values=cache)  # [1, P]
    cache.batch_repeat_interleave(batch)  # [B, heads, P, head_dim] per layer
    return cache


# ----------------------------------------------------------------------------- canvases


@dataclass
class _Row:
    """One candidate's token sequence while it is being filled."""

    ids: list[int]  # known tokens and slot contents
    owner: list[int]  # marker index for slots, -1 for known tokens
    filled: list[bool]  # known tokens count as filled
    starts: list[int]  # starting token of each slot (noise is drawn later), -1 = noise
    must_fill: list[bool]  # never the filler: a gap's first slot (every slot of an exact-length gap)
    slots: list[int]  # slot count per marker
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


def _build_rows(segments: list[Segment], loaded: LoadedModel, settings: FillSettings) -> list[_Row]:
    tokenizer = loaded.tokenizer
    encoded = [_encode(tokenizer, s.text if isinstance(s, Known) else s.old if isinstance(s, Edit) else "") for s in segments]
    markers_encoded = [e for s, e in zip(segments, encoded) if not isinstance(s, Known)]
    edit_lengths = [len(e) for e in markers_encoded]
    generator = torch.Generator().manual_seed(settings.seed)
    rows = []
    for r in range(settings.candidates):
        counts = _slot_counts(segments, loaded, settings, r, edit_lengths)
        row = _Row([], [], [], [], [], counts)
        if tokenizer.bos_token_id is not None:
            _append(row, [tokenizer.bos_token_id])
        marker = 0
        for segment, ids in zip(segments, encoded):
            if isinstance(segment, Known):
                _append(row, ids)
                continue
            if isinstance(segment, Edit) and settings.edit_strength == 0:
                _append(row, ids)  # strength 0: the old text stays as it is
                row.slots[marker] = 0
            else:
                starts = _slot_starts(segment, ids, counts[marker], settings, loaded, generator)
                must_fill = 1 if isinstance(segment, Gap) else 0  # a gap holds at least one token
                if isinstance(segment, Gap) and segment.size and settings.exact_length:
                    must_fill = len(starts)  # <FILL:n> holds exactly n
                _append(row, starts, owner=marker, must_fill=must_fill)
            marker += 1
        rows.append(row)
    return rows


def _append(row: _Row, starts: list[int], owner: int = -1, must_fill: int = 0) -> None:
    """Add known tokens (owner -1) or one marker's slots, whose contents the windows write later; the first
    `must_fill` slots may not be the filler."""
    row.ids += starts if owner < 0 else [0] * len(starts)
    row.owner += [owner] * len(starts)
    row.filled += [owner < 0] * len(starts)
    row.starts += starts
    row.must_fill += [i < must_fill for i in range(len(starts))]


def _slot_starts(segment, old_ids, count, settings, loaded, generator) -> list[int]:
    """Starting tokens of a marker's slots: noise for gaps; for edits the old tokens (then filler), with a
    strength-sized random share turned to noise."""
    if isinstance(segment, Gap):
        return [-1] * count
    starts = old_ids + [loaded.null_id] * (count - len(old_ids))
    noisy = torch.rand(count, generator=generator) < settings.edit_strength
    return [-1 if n else s for s, n in zip(starts, noisy.tolist())]


# ----------------------------------------------------------------------------- the hooks


class _PassRecorder(LogitsProcessor):
    """Clamps known positions and records every pass; runs first in the library's processor list.

    It sees the raw scores, so it applies the same temperature the library will apply next to compute
    exactly the entropies the sampler and the stopping rule will see."""

    def __init__(self, known, known_ids, owner, banned, must_fill, null_id, settings, on_pass, cancel):
        self.known, self.known_ids, self.owner, self.banned = known, known_ids, owner, banned
        self.must_fill, self.null_id = must_fill, null_id
        self.settings = settings
        self.on_pass = on_pass
        self.cancel = cancel
        self.stopper = StableAndConfidentStoppingCriteria(settings.stability_threshold, settings.confidence_threshold)
        self.finished = torch.zeros(known.shape[0], dtype=torch.bool)
        self.passes: list[dict] = []  # per pass: CPU tensors [B, C]

    def __call__(self, input_ids, scores, cur_step):
        if self.cancel is not None and self.cancel.is_set():
            raise FillCancelled("The fill was cancelled.")
        scores = clamp_scores(scores, self.known, self.known_ids, self.banned, self.must_fill, self.null_id)
        scaled = scores / temperature_at(cur_step, self.settings)
        log_probs = torch.log_softmax(scaled, dim=-1)  # [B, C, V]
        top_log_prob, draft = log_probs.max(dim=-1)  # [B, C]
        entropy = -(log_probs.exp() * log_probs.nan_to_num(neginf=0.0)).sum(-1)  # [B, C]
        if self.settings.left_to_right:
            self.known, self.known_ids = left_to_right_commit(draft, self.known, self.known_ids, self.owner, self.null_id)
            # free slots get a flat distribution: nothing is drafted there before its turn
            scores = clamp_scores(torch.zeros_like(scores), self.known, self.known_ids, self.banned)
            scaled = scores / temperature_at(cur_step, self.settings)
            accepted = self.known
        else:
            accepted = entropy_bound_accept(entropy, self.settings.entropy_bound)
        stopped = self.stopper(draft, scaled)
        # one device-to-host copy per pass: ids < 2**24 are exact in float32
        host = torch.stack([draft.float(), top_log_prob.exp().float(), entropy.float(), accepted.float(), stopped[:, None].expand_as(draft).float()]).cpu()
        record = {
            "draft": host[0].long(),
            "confidence": host[1],
            "entropy": host[2],
            "accepted": host[3].bool(),
            "active": ~self.finished,
        }
        newly_finished = host[4, :, 0].bool() & ~self.finished
        self.finished = self.finished | newly_finished
        self.passes.append(record)
        if self.on_pass is not None:
            self.on_pass(record)
        return scores


# ----------------------------------------------------------------------------- the fill


def _state(row: _Row, start: int, offset: int, known: bool, accepted: bool) -> str:
    """How the trace shows one canvas position."""
    if start + offset >= len(row.ids):
        return "outside"
    return "known" if known else "accepted" if accepted else "noise"


class Engine:
    """Fills marked text with one loaded model. Holds only caches that depend on the model."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self._pieces: dict[int, str] = {}
        vocab = loaded.model.config.text_config.vocab_size
        self._banned = torch.zeros(vocab, dtype=torch.bool)
        self._banned[[i for i in loaded.banned_ids if i < vocab]] = True
        # The library draws noise from torch's global generator, so one fill at a time keeps seeds reproducible.
        self._lock = threading.Lock()

    def piece(self, token_id: int) -> str:
        """The text of one token, cached: traces show thousands of them."""
        if token_id not in self._pieces:
            self._pieces[token_id] = self.loaded.tokenizer.decode([token_id])
        return self._pieces[token_id]

    def fill(
        self,
        text: str,
        language: str = "text",
        settings: FillSettings | None = None,
        on_pass: Callable[[TracePass], None] | None = None,
        cancel: threading.Event | None = None,
        max_bytes: int | None = None,
        max_markers: int | None = None,
    ) -> FillResult:
        """Fill every marker in `text`. Raises MarkerError / SettingsError / FillCancelled with user-facing messages."""
        settings = settings or FillSettings.from_model(self.loaded)
        settings.validate()
        limits = {k: v for k, v in (("max_bytes", max_bytes), ("max_markers", max_markers)) if v is not None}
        segments = parse_markers(text, **limits)
        rows = _build_rows(segments, self.loaded, settings)
        notes: list[str] = []
        windows = 0
        total_passes = 0
        with self._lock:
            started = time.perf_counter()
            while active := [r for r in rows if r.next_window() is not None]:
                total_passes += self._run_window(active, windows, settings, on_pass, cancel, notes)
                windows += 1
        candidates = [self._candidate(segments, row, index, language, text) for index, row in enumerate(rows)]
        candidates.sort(key=lambda c: syntax.rank_key(c.report, c.confidence))
        best = candidates[0]
        seconds = time.perf_counter() - started
        tokens = sum(1 for t, o in zip(rows[best.row].ids, rows[best.row].owner) if o >= 0 and t != self.loaded.null_id)
        stats = FillStats(
            seconds=round(seconds, 4),
            passes=total_passes,
            tokens=tokens,
            tokens_per_pass=round(tokens / best.passes, 3) if best.passes else 0.0,
            tokens_per_second=round(tokens / seconds, 2) if seconds > 0 else 0.0,
            windows=windows,
        )
        return FillResult(best.text, best.fills, language, best.report, candidates, stats, notes)

    def _run_window(self, rows: list[_Row], window: int, settings, on_pass, cancel, notes) -> int:
        """Denoise one canvas per row as one batch; write the slot tokens back. Returns passes run."""
        loaded, canvas = self.loaded, self.loaded.canvas_length
        null, pad_id = loaded.null_id, loaded.tokenizer.pad_token_id or 0
        limit = max(1, loaded.max_context - canvas)
        prefixes, starts, known, seeds, must_fill, owners = [], [], [], [], [], []
        for row in rows:
            w = row.next_window()
            prefix = [t for t, o in zip(row.ids[:w], row.owner[:w]) if not (o >= 0 and t == null)]
            if len(prefix) > limit and row is rows[0]:
                notes.append(
                    f"Window {window + 1}: the text before it is {len(prefix)} tokens; the first "
                    f"{len(prefix) - limit} were left out (the model reads at most {limit})."
                )
            prefix = prefix[-limit:]
            end = min(w + canvas, len(row.ids))
            outside = canvas - (end - w)  # canvas positions past the end of the text
            # With a filler token the end of the text is clamped to it (as in training); without one those
            # positions run free and are thrown away.
            known.append([o < 0 for o in row.owner[w:end]] + [null is not None] * outside)
            must_fill.append(row.must_fill[w:end] + [False] * outside)
            owners.append(row.owner[w:end] + [-1] * outside)
            seeds.append(row.starts[w:end] + ([null] * outside if null is not None else [-1] * outside))
            starts.append(w)
            prefixes.append(prefix or [pad_id])
        width = max(len(p) for p in prefixes)
        input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prefixes])  # [B, P] left-padded
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prefixes])  # [B, P]
        cache = None
        own_cache = loaded.model.generation_config.cache_implementation is None  # else generate builds its own (static) cache
        if own_cache and len(rows) > 1 and width > 1 and all(p == prefixes[0] for p in prefixes):
            # all but the last prefix token go through the encoder once; generate encodes that last one per row
            cache = shared_prefix_cache(loaded.model, prefixes[0][:-1], len(rows))
            input_ids = input_ids[:, -1:]  # [B, 1]
        known_t = torch.tensor(known)  # [B, C]
        seed_ids = torch.tensor(seeds)  # [B, C], -1 = noise
        torch.manual_seed(settings.seed + 7919 * window)
        noise = torch.randint(0, loaded.model.config.text_config.vocab_size, seed_ids.shape)  # uniform, as the library
        start_canvas = torch.where(seed_ids < 0, noise, seed_ids)  # [B, C]
        for b, row in enumerate(rows):
            state = [_state(row, starts[b], i, k, s >= 0) for i, (k, s) in enumerate(zip(known[b], seeds[b]))]
            row.trace.append(self._trace_pass(window, 0, start_canvas[b].tolist(), state, None, None, None))
        live: list[TracePass] = []

        def show_live(record: dict) -> None:
            live.append(self._record_pass(window, len(live) + 1, record, 0, known[0], starts[0], rows[0], live[-1] if live else rows[0].trace[-1]))
            on_pass(live[-1])

        device = loaded.device
        if settings.left_to_right:  # at most one pass per free slot; it stops on the pass that leaves none free
            settings = replace(settings, max_passes=int((~known_t).sum(-1).max()), stability_threshold=0)
        recorder = _PassRecorder(
            known_t.to(device),
            start_canvas.to(device),
            torch.tensor(owners, device=device),
            self._banned.to(device),
            torch.tensor(must_fill, device=device),
            null,
            settings,
            show_live if on_pass else None,
            cancel,
        )
        out = loaded.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            past_key_values=cache,
            decoder_input_ids=start_canvas.to(device),
            max_new_tokens=canvas,
            max_denoising_steps=settings.max_passes,
            sampler_config=EntropyBoundSamplerConfig(entropy_bound=float(settings.entropy_bound)),
            t_min=float(settings.t_min),
            t_max=float(settings.t_max),
            stability_threshold=int(settings.stability_threshold),
            confidence_threshold=float(settings.confidence_threshold),
            logits_processor=LogitsProcessorList([recorder]),
        )
        final = out.sequences[:, -canvas:].cpu()  # [B, C]
        last = recorder.passes[-1]
        for b, row in enumerate(rows):
            for step, record in enumerate(recorder.passes, start=1):
                if bool(record["active"][b]):
                    row.trace.append(self._record_pass(window, step, record, b, known[b], starts[b], row, row.trace[-1]))
                    row.passes += 1
            for offset in range(min(canvas, len(row.ids) - starts[b])):
                position = starts[b] + offset
                if not known[b][offset]:
                    row.ids[position] = int(final[b, offset])
                    row.filled[position] = True
                    row.confidence[position] = float(last["confidence"][b, offset])
        return len(recorder.passes)

    def _trace_pass(self, window, step, ids, state, previous, confidence, entropy) -> TracePass:
        before = previous.token_ids if previous is not None else ids
        return TracePass(
            window=window,
            step=step,
            token_ids=ids,
            pieces=[self.piece(t) for t in ids],
            state=state,
            changed=[x != y for x, y in zip(ids, before)],
            confidence=confidence or [1.0 if s == "known" else 0.0 for s in state],
            entropy=entropy or [0.0] * len(ids),
        )

    def _record_pass(self, window, step, record, b, known_row, start, row, previous) -> TracePass:
        accepted = record["accepted"][b].tolist()
        state = [_state(row, start, i, k, a) for i, (k, a) in enumerate(zip(known_row, accepted))]
        confidence = [round(c, 4) for c in record["confidence"][b].tolist()]
        entropy = [round(e, 4) for e in record["entropy"][b].tolist()]
        return self._trace_pass(window, step, record["draft"][b].tolist(), state, previous, confidence, entropy)

    def _candidate(self, segments, row: _Row, index: int, language: str, source: str) -> Candidate:
        null = self.loaded.null_id
        markers = len(row.slots)
        fill_ids: list[list[int]] = [[] for _ in range(markers)]
        for token, owner in zip(row.ids, row.owner):
            if owner >= 0 and token != null:
                fill_ids[owner].append(token)
        kept_edits = iter(s.old for s in segments if isinstance(s, Edit))
        fills = []
        for segment, ids, slots in zip([s for s in segments if not isinstance(s, Known)], fill_ids, row.slots):
            old = next(kept_edits) if isinstance(segment, Edit) else None
            fills.append(old if old is not None and slots == 0 else self.loaded.tokenizer.decode(ids))
        text, spans = stitch(segments, fills)
        report = syntax.parse_report(text, language, spans, original=without_gaps(segments))
        confidences = list(row.confidence.values())
        confidence = sum(confidences) / len(confidences) if confidences else 1.0
        return Candidate(text, fills, spans, row.slots, index, confidence, row.passes, report, syntax.rank_reason(report, confidence), row.trace)
