"""A deterministic backend that denoises by a rule instead of a model: the proof that the engine needs no
DiffusionGemma. Tests drive the whole engine (rows, windows, candidates, ranking, trace) through it.

The rule: a gap slot starts as the padding token (a stand-in for noise); each pass commits the two leftmost
free gap slots of every row (one with `left_to_right`) to the token of `RULE_TEXT`, at confidence 1; a row stops
once its window has no free gap slot.

How a masked-diffusion family (LLaDA, Dream, DiffuCoder) plugs in the same way, in one module:

- a settings dataclass subclassing `FillSettings` with its knobs (steps, block length, remasking strategy,
  temperature), each a `knob(...)` field: the CLI flags, sliders and API parameters follow from it;
- `start`: the initial tokens where given and the family's mask token elsewhere (masked diffusion starts from
  masks, not uniform noise);
- `denoise`: for each step, run the model on prefix + canvas (these models have no separate encoder cache, so
  the prefix rows are concatenated before the canvas), predict every masked position, unmask the most confident
  ones (never a known position: clamping is free because known positions are simply never masked), re-mask the
  rest, build one `PassRecord` per step for `on_pass`, and check `cancel` before each step;
- `checkpoint_defaults`: read its generation defaults; `model_class`: the transformers class to load it with
  (e.g. "AutoModel" with trust_remote_code for LLaDA); decorate the class with `@register` under the
  checkpoint's `model_type` ("llada", "dream") and import the module in `backends/__init__.py`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..settings import FillSettings
from .base import Cancel, Denoised, FillCancelled, LoadedModel, PassRecord, WindowBatch, register

RULE_TEXT = "x"
UNSURE = 0.5  # confidence shown for a slot not committed yet
RULE_WINDOW = (16, 256)  # canvas length, longest prefix + canvas: small, so tests see several windows


@register
class RuleBackend:
    """Fills every slot with the token of `RULE_TEXT`, two slots per pass, left to right."""

    model_type = "rule"
    title = "rule"
    model_class = ""  # no checkpoint to load: `rule_model` builds its LoadedModel
    settings = FillSettings

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.token = loaded.tokenizer(RULE_TEXT, add_special_tokens=False)["input_ids"][0]

    @staticmethod
    def checkpoint_defaults(model: Any) -> dict[str, Any]:
        return {}

    @staticmethod
    def window_sizes(model: Any) -> tuple[int, int]:
        return RULE_WINDOW

    def start(self, batch: WindowBatch, settings: FillSettings) -> list[list[int]]:
        pad = self.loaded.pad_id
        return [[pad if t < 0 else t for t in row] for row in batch.initial]

    def denoise(self, batch: WindowBatch, start: list[list[int]], settings: FillSettings,
                on_pass: Callable[[PassRecord], None] | None, cancel: Cancel | None) -> Denoised:
        canvas = [list(row) for row in start]  # [B, C]
        # [B, C] clamped or committed; positions past the text (owner -1, not clamped) are left as they are
        known = [[k or o < 0 for k, o in zip(ks, os)] for ks, os in zip(batch.known, batch.owner)]
        per_pass = 1 if settings.left_to_right else 2
        passes: list[PassRecord] = []
        while not all(all(row) for row in known):
            if cancel is not None and cancel.is_set():
                raise FillCancelled("The fill was cancelled.")
            active = [not all(row) for row in known]
            for row, ids in zip(known, canvas):
                for i in [i for i, k in enumerate(row) if not k][:per_pass]:
                    row[i], ids[i] = True, self.token
            record = PassRecord(
                draft=[list(ids) for ids in canvas],
                confidence=[[1.0 if k else UNSURE for k in row] for row in known],
                entropy=[[0.0 if k else math.log(2) for k in row] for row in known],
                accepted=[list(row) for row in known],
                active=active,
            )
            passes.append(record)
            if on_pass is not None:
                on_pass(record)
        return Denoised(canvas, passes)


def rule_model(tokenizer: Any, null_id: int | None = None) -> LoadedModel:
    """A LoadedModel for the rule backend around any tokenizer."""
    canvas_length, max_context = RuleBackend.window_sizes(None)
    return LoadedModel(model=None, tokenizer=tokenizer, source="rule", model_type=RuleBackend.model_type,
                       canvas_length=canvas_length, max_context=max_context, null_id=null_id)
