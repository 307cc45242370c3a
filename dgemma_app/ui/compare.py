"""Left to right beside diffusion: the same gap filled both ways, the two canvases one above the other on one slider.

The one-picture lesson of why diffusion needs fewer passes (or, with a weak model, when it does not): both fills
use the page's settings with one candidate, once with the diffusion sampler and once with the left-to-right
baseline, and the slider shows pass i of each (a fill that has finished stays on its last pass).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

import gradio as gr

from ..model import ModelLoadError
from ..results import FillResult, TracePass, counted
from . import render
from .api import UNEXPECTED
from .source import FillSource, FillUnavailable

log = logging.getLogger(__name__)

EMPTY = '<div class="dg-empty">Press Compare to fill the gap both ways and compare the passes.</div>'
WAYS = ("Diffusion", "Left to right")


@dataclass
class Compare:
    run: gr.Button
    view: gr.HTML
    slider: gr.Slider
    traces: gr.State  # [diffusion trace, left-to-right trace]


def build_compare() -> Compare:
    """The section's controls (under the pass player)."""
    gr.Markdown(
        "## Diffusion beside left to right\nThe same gap, filled by the diffusion sampler and by the left-to-right "
        "baseline (one token per pass, like an autoregressive model), with the settings above and one candidate."
    )
    run = gr.Button("Compare: fill the gap both ways", elem_id="dgemma-compare-run")
    view = gr.HTML(EMPTY, elem_id="dgemma-compare")
    slider = gr.Slider(0, 1, value=0, step=1, label="Both fills at pass", interactive=False, elem_id="dgemma-compare-pass")
    return Compare(run, view, slider, gr.State(None))


def wire_compare(compare: Compare, service: FillSource, editor: gr.Code, language: gr.Dropdown, knobs: dict) -> None:
    names = list(knobs)

    def both(code: str, lang: str, *values) -> tuple:
        return fill_both(service, code, lang, dict(zip(names, values)))

    compare.run.click(both, [editor, language, *knobs.values()], [compare.view, compare.slider, compare.traces],
                      concurrency_id="model", api_visibility="private")
    compare.slider.change(show, [compare.slider, compare.traces], [compare.view], api_visibility="private", queue=False,
                          show_progress="hidden")


def _last(updates: Iterable) -> FillResult:
    """The FillResult at the end of a Service.run stream (its progress is not shown here)."""
    for update in updates:
        pass
    return update


def fill_both(service: FillSource, code: str, language: str, knobs: dict) -> tuple:
    """Both fills, or a message saying why not; the slider starts at the longer fill's last pass."""
    try:
        request = service.request(code or "", language)
        traces = [_last(service.run(request, {**knobs, "candidates": 1, "left_to_right": ltr})).trace for ltr in (False, True)]
    except (ValueError, ModelLoadError, FillUnavailable) as err:
        return render.message(str(err), "error"), gr.Slider(0, 1, value=0, interactive=False), None
    except Exception:
        log.exception("compare failed")
        return render.message(UNEXPECTED, "error"), gr.Slider(0, 1, value=0, interactive=False), None
    if not all(traces):
        return render.message("Nothing to compare: no slot was denoised."), gr.Slider(0, 1, value=0, interactive=False), None
    last = max(map(len, traces)) - 1
    return view(traces, last), gr.Slider(0, max(last, 1), value=last, step=1, interactive=True), traces


def show(index: float, traces: list[list[TracePass]] | None):
    return gr.skip() if traces is None else view(traces, int(index))


def view(traces: list[list[TracePass]], index: int) -> str:
    """Both canvases at slider position `index`, each captioned with its pass count."""
    boxes = []
    for way, trace in zip(WAYS, traces):
        i = min(max(index, 0), len(trace) - 1)
        passes = len(trace) - 1 - trace[-1].window  # a window's starting canvas is not a pass
        done = " (done)" if index >= len(trace) - 1 else ""
        head = f"{way}: {counted(passes, 'pass', 'passes')} in all{done}"
        boxes.append(f'<div class="dg-compare-way" data-way="{way}"><h4>{head}</h4>{render.canvas(trace[i], render.trace_caption(trace, i))}</div>')
    return f'<div class="dg-compare-box">{"".join(boxes)}</div>'
