"""The seam between the fill engine and a model family: what the engine hands a backend and what it gets back.

The engine owns rows, windows, candidates, ranking and the trace; a backend denoises one window batch. It gets
a `WindowBatch` (per row: the encoder prefix, the starting tokens, which positions are clamped; per fill sharing
the batch: its rows and its noise seed), makes the starting canvas, runs its sampler with a per-pass callback and
a cancel flag, and returns the final canvas and one `PassRecord` per pass. Backends register under the `model_type` of the checkpoints they serve (the pattern
of FastChat's model adapters and dllm's per-family samplers).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Protocol

from ..settings import FillSettings


class FillCancelled(Exception):
    """The caller asked the fill to stop (e.g. the browser tab went away)."""


@dataclass
class LoadedModel:
    """A ready model with what the engine and its backend need to know about it."""

    model: Any  # the family's model object (a torch module for DiffusionGemma)
    tokenizer: Any
    source: str
    model_type: str  # the checkpoint's config.model_type: picks the backend
    canvas_length: int
    max_context: int  # longest encoder prefix + canvas the model's positions allow
    null_id: int | None  # the `<null>` filler, when the tokenizer defines one
    banned_ids: list[int] = field(default_factory=list)  # special tokens never placed in a gap
    defaults: dict[str, Any] = field(default_factory=dict)  # the checkpoint's own sampler settings
    device: str = "cpu"

    @property
    def pad_id(self) -> int:
        """What pads a short encoder prefix (and stands in for an empty one)."""
        return self.tokenizer.pad_token_id or 0


class Cancel(Protocol):
    """Anything that says whether to stop: a threading.Event, or "every fill of this batch is cancelled"."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class AllSet:
    """Set once every one of `flags` is (None is never set): a shared batch stops when all its fills are cancelled."""

    flags: list[Cancel | None]

    def is_set(self) -> bool:
        return all(f is not None and f.is_set() for f in self.flags)


@dataclass(frozen=True)
class Stream:
    """One fill's rows in a window batch (consecutive, in batch order) and the seed of their noise. A backend
    draws each stream's noise from its own generator, so what a fill draws does not depend on what shares its
    batch, and a fill alone draws exactly what it drew before batching."""

    rows: int
    seed: int


@dataclass(frozen=True)
class WindowBatch:
    """One canvas per active row, denoised together. Lists are [B] or [B, C] (C = canvas length)."""

    streams: list[Stream]  # [F] the fills sharing this batch, in row order; their rows add up to B
    prefixes: list[list[int]]  # [B][P_b] what the encoder reads before each canvas (never empty)
    initial: list[list[int]]  # [B, C] starting token per position, -1 = noise
    known: list[list[bool]]  # [B, C] clamped: the position keeps its initial token
    owner: list[list[int]]  # [B, C] marker index of a gap slot, -1 elsewhere
    must_fill: list[list[bool]]  # [B, C] slots that may not hold the `<null>` filler
    lead: list[list[str]]  # [B, C] text a slot's token must start with ("" = any): a marker's first slot
    line_end: list[list[bool]]  # [B, C] slot of a gap that ends a line: no filler before the fill's line break,
    # which ends the fill (it and the gap's later slots become filler); never set for a model without a filler

    @classmethod
    def joined(cls, batches: list["WindowBatch"]) -> "WindowBatch":
        """Several fills' batches as one, rows in order."""
        return cls(*(sum((getattr(b, f.name) for b in batches), []) for f in fields(cls)))


@dataclass(frozen=True)
class PassRecord:
    """What one denoising pass did to every row of a window batch."""

    draft: list[list[int]]  # [B, C] the predicted token
    confidence: list[list[float]]  # [B, C] its probability
    entropy: list[list[float]]  # [B, C] of the position's distribution, nats
    accepted: list[list[bool]]  # [B, C] kept this pass (clamped positions count as kept)
    active: list[bool]  # [B] the row had not stopped before this pass

    def rows(self, lo: int, hi: int) -> "PassRecord":
        """The pass as one fill sees it: its rows lo..hi-1 of the batch."""
        return PassRecord(*(getattr(self, f.name)[lo:hi] for f in fields(self)))


@dataclass(frozen=True)
class Denoised:
    final: list[list[int]]  # [B, C] the canvas after the last pass
    passes: list[PassRecord]


class Backend(Protocol):
    """One model family's sampler. Constructed once per loaded model."""

    model_type: ClassVar[str]  # config.model_type of the checkpoints it serves
    title: ClassVar[str]  # the family's name in messages
    model_class: ClassVar[str]  # transformers class that loads its checkpoints ("" = not loadable from a folder)
    settings: ClassVar[type[FillSettings]]  # the family's settings dataclass

    def __init__(self, loaded: LoadedModel) -> None: ...

    @staticmethod
    def checkpoint_defaults(model: Any) -> dict[str, Any]:
        """The sampler settings a checkpoint ships with (generation_config.json), by settings field name."""

    @staticmethod
    def window_sizes(model: Any) -> tuple[int, int]:
        """(canvas length, longest encoder prefix + canvas) of a loaded model."""

    def start(self, batch: WindowBatch, settings: FillSettings) -> list[list[int]]:
        """The starting canvas [B, C]: initial tokens where given, the family's noise (per stream) elsewhere."""

    def denoise(
        self,
        batch: WindowBatch,
        start: list[list[int]],
        settings: FillSettings,
        on_pass: Callable[[PassRecord], None] | None,
        cancel: Cancel | None,
    ) -> Denoised:
        """Run the sampler from `start` (sampler knobs from `settings`, the same for every stream; noise per
        stream); call `on_pass` after every pass; raise FillCancelled once `cancel` is set."""


_REGISTRY: dict[str, type[Backend]] = {}


def register(backend: type[Backend]) -> type[Backend]:
    """Class decorator: serve checkpoints whose model_type is `backend.model_type`."""
    _REGISTRY[backend.model_type] = backend
    return backend


def backend_for(model_type: str) -> type[Backend] | None:
    return _REGISTRY.get(model_type)


def registered() -> list[type[Backend]]:
    """Every registered backend, in registration order."""
    return list(_REGISTRY.values())


def settings_for(loaded: LoadedModel, **overrides: Any) -> FillSettings:
    """The loaded family's settings: the checkpoint's defaults, then the overrides given (None = not given)."""
    backend = _REGISTRY[loaded.model_type]
    return backend.settings.with_overrides(loaded.defaults, overrides)
