"""Teaching mode: sampler settings under which a fill settles gradually, so the passes are worth watching.

With a checkpoint's defaults (the embedded model's entropy bound is 16) the sampler accepts a small gap in its
first pass and the replay shows noise, then the answer. A small entropy bound accepts only the few surest
tokens per pass, a warm sampler keeps the rest uncertain for longer, and a longer stability window lets the
last tokens settle in view. Measured on the teaching example with the embedded model (14.5M, 2026-11-30), seeds
0-7: with one-line gaps (the default since that evening; the gap ends its line, so the filler waits for a line
break) 14-32 passes, seed 6 running to the 32-pass cap; without them 7-18 passes, 4-16 of them with part of the
gap accepted (with t 0.8 → 0.3, seed 6 settled in 3 passes).
"""
from __future__ import annotations

from typing import Any

from ..settings import Setting

TEACHING: dict[str, Any] = {
    "entropy_bound": 0.3,
    "t_max": 1.0,
    "t_min": 0.5,
    "stability_threshold": 2,
    "max_passes": 32,
    "candidates": 1,  # one trace to watch
}


def teaching_values(knobs: list[Setting], defaults: dict[str, Any], on: bool) -> dict[str, Any]:
    """The knob values teaching mode sets (on) or gives back to the model's defaults (off), by field name."""
    return {s.name: TEACHING[s.name] if on else defaults.get(s.name, s.default) for s in knobs if s.name in TEACHING}


def teaching_note(knobs: list[Setting], defaults: dict[str, Any]) -> str:
    """What teaching mode changes, each knob with the model's own value beside it."""
    changes = ", ".join(
        f"{s.knob.label} {TEACHING[s.name]} (model: {defaults.get(s.name, s.default)})" for s in knobs if s.name in TEACHING
    )
    return (
        f"**Teaching mode** sets {changes}. Each pass accepts only the few surest tokens, so the gap settles "
        "over many passes: after the fill press **Play** under the canvas. Untick it to get the model's settings back."
    )
