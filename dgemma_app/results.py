"""What a fill returns: plain dataclasses a page or `--json` only indexes (no torch, no model).

`Position` is the state of one canvas position in one pass; it is defined here once and the renderers use it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from .syntax import ParseReport


class Position(StrEnum):
    """How the trace shows one canvas position (the values are the JSON and CSS names)."""

    KNOWN = "known"  # clamped context
    ACCEPTED = "accepted"  # the sampler kept this pass's draft token
    NOISE = "noise"  # re-noised after this pass
    OUTSIDE = "outside"  # past the end of the text

    @property
    def free(self) -> bool:
        """A gap slot (accepted or not), as opposed to context."""
        return self in (Position.ACCEPTED, Position.NOISE)


@dataclass
class TracePass:
    """One denoising pass of one window, as plain lists over canvas positions."""

    window: int
    step: int  # 0 = the starting canvas
    token_ids: list[int]
    pieces: list[str]
    state: list[Position]
    changed: list[bool]  # draft token differs from the previous pass
    confidence: list[float]  # probability of the drafted token
    entropy: list[float]  # entropy of the position's distribution (nats)

    @property
    def accepted(self) -> int:
        return sum(s is Position.ACCEPTED for s in self.state)

    @property
    def mean_entropy(self) -> float:
        free = [e for e, s in zip(self.entropy, self.state) if s.free]
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
    report: ParseReport
    rank_reason: str
    trace: list[TracePass] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "fills": self.fills,
            "slots": self.slots,
            "confidence": round(self.confidence, 4),
            "passes": self.passes,
            "parses": self.report.parses,
            "new_errors": self.report.new_errors,
            "rank_reason": self.rank_reason,
        }


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
    report: ParseReport
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
