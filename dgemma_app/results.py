"""What a fill returns: plain dataclasses a page or `--json` only indexes (no torch, no model).

`Position` is the state of one canvas position in one pass; it is defined here once and the renderers use it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from .syntax import ParseReport


class Position(StrEnum):
    """What one canvas position is after one pass: each value has one meaning, shown by one colour in the page's
    legend (the values are the JSON and CSS names)."""

    KNOWN = "known"  # your text around the gap, clamped: the model can only predict its own token
    SEED = "seed"  # starting canvas only: an <EDIT>'s old token, kept as the starting draft
    NOISE = "noise"  # the sampler did not keep this pass's guess: the slot is random again for the next pass
    KEPT = "kept"  # kept for the next pass, but a later pass replaces it (live: not known yet, so every kept token)
    ACCEPTED = "accepted"  # final: kept from here on and never changed again; on a window's last pass, every slot
    OUTSIDE = "outside"  # past the end of the text

    @property
    def free(self) -> bool:
        """A gap slot (whatever its state), as opposed to context."""
        return self in (Position.SEED, Position.NOISE, Position.KEPT, Position.ACCEPTED)


@dataclass
class TracePass:
    """One denoising pass of one window, as plain lists over canvas positions."""

    window: int
    step: int  # 0 = the starting canvas
    token_ids: list[int]
    pieces: list[str]
    state: list[Position]
    changed: list[bool]  # draft token differs from the previous pass
    confidence: list[float]  # probability of the drafted token in this pass
    entropy: list[float]  # entropy of the position's distribution (nats)

    @property
    def accepted(self) -> int:
        """Gap tokens final by this pass; it never falls from one pass of a window to the next."""
        return sum(s is Position.ACCEPTED for s in self.state)

    @property
    def kept(self) -> int:
        """Gap tokens the sampler kept this pass that a later pass replaces."""
        return sum(s is Position.KEPT for s in self.state)

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
    # geometric mean of each fill token's probability (filler excluded) at the pass it became final (exp of the mean
    # log-probability): how sure the model was when it committed, which separates candidates; at the last pass
    # every token is near 1
    confidence: float
    passes: int  # this row's passes over all windows: its trace has one more per window (the starting canvas)
    tokens: int  # tokens in its fills (filler excluded)
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
    """Speed of one candidate (the chosen one in a FillResult): its passes are the passes its trace shows."""

    seconds: float  # wall time of the whole fill (all candidates ran as one batch)
    passes: int  # the candidate's decoder passes, over all windows
    tokens: int  # tokens in the candidate's fills (filler excluded)
    tokens_per_pass: float
    tokens_per_second: float
    windows: int

    @classmethod
    def of(cls, candidate: "Candidate", seconds: float, windows: int) -> "FillStats":
        tokens, passes = candidate.tokens, candidate.passes
        return cls(
            seconds=round(seconds, 4),
            passes=passes,
            tokens=tokens,
            tokens_per_pass=round(tokens / passes, 3) if passes else 0.0,
            tokens_per_second=round(tokens / seconds, 2) if seconds > 0 else 0.0,
            windows=windows,
        )


def rate(value: float) -> str:
    """A speed with enough digits that a slow fill does not read 0 (0.4, 7.5, 312)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}" if value >= 0.1 or value == 0 else f"{value:.2g}"


def counted(n: int, noun: str, plural: str = "") -> str:
    """'1 pass', '3 passes': every count the front-ends print."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


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
            "checked_by": self.report.checked_by,
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
