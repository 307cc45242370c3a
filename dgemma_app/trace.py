"""What the trace shows of each canvas position, pass by pass (the states are defined in `results.Position`).

Small pure functions, so the engine only asks: outside the text, clamped, kept by the sampler, final yet?
"""
from __future__ import annotations

from .results import Position, TracePass


def position_state(outside: bool, known: bool, kept: bool, final: bool = False) -> Position:
    """A canvas position after a pass: past the text's end, clamped, accepted (final), kept, or noise."""
    if outside:
        return Position.OUTSIDE
    return Position.KNOWN if known else Position.ACCEPTED if final else Position.KEPT if kept else Position.NOISE


def start_state(outside: bool, known: bool, seeded: bool) -> Position:
    """A position of the starting canvas: an <EDIT>'s old token is a seed, every other slot noise."""
    if outside or known:
        return position_state(outside, known, False)
    return Position.SEED if seeded else Position.NOISE


def settled_from(drafts: list[list[int]], kept: list[list[bool]]) -> list[int]:
    """Per canvas position, the first pass (index into `drafts`) from which its token is final: the sampler
    kept that same token in every pass since, and the last pass's draft is the output. So a token shown as
    accepted never changes again, while one the sampler kept and a later pass replaced is only kept."""
    last = len(drafts) - 1
    first = []
    for i, token in enumerate(drafts[-1]):
        k = last
        while k > 0 and drafts[k - 1][i] == token and kept[k - 1][i]:
            k -= 1
        first.append(k)
    return first


def pass_positions(trace: list[TracePass]) -> list[int]:
    """The trace indices a pass slider steps through: position 0 is the first window's starting canvas, position k
    the fill's k-th decoder pass over all windows. A later window's starting canvas is not a pass and gets no
    position, so the last position is the pass count the stats give (`Candidate.passes`)."""
    return [i for i, p in enumerate(trace) if p.step > 0 or i == 0]
