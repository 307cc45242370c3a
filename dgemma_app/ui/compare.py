"""Left to right beside diffusion: the same gap filled both ways, the two canvases one above the other on one slider.

The one-picture lesson of why diffusion needs fewer passes (or, with a weak model, when it does not): both fills
use the page's settings with one candidate, once with the diffusion sampler and once with the left-to-right
baseline, and the slider shows pass i of each (a fill that has finished stays on its last pass). While they run, both
canvases stream live as the main view does (diffusion first, then left to right: different samplers never share a
batch), with a status line.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import gradio as gr

from ..model import ModelLoadError
from ..results import FillResult, TracePass, counted
from ..trace import pass_positions
from . import render
from .api import UNEXPECTED
from .service import Progress
from .source import FillSource, FillUnavailable

log = logging.getLogger(__name__)

EMPTY = '<div class="dg-empty">Press Compare to fill the gap both ways and compare the passes.</div>'
WAYS = ("Diffusion", "Left to right")


@dataclass
class Compare:
    run: gr.Button
    status: gr.HTML
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
    status = gr.HTML(elem_id="dgemma-compare-status")
    view = gr.HTML(EMPTY, elem_id="dgemma-compare")
    slider = gr.Slider(0, 1, value=0, step=1, label="Both fills at pass", interactive=False, elem_id="dgemma-compare-pass")
    return Compare(run, status, view, slider, gr.State(None))


def wire_compare(compare: Compare, service: FillSource, editor: gr.Code, language: gr.Dropdown, knobs: dict) -> None:
    names = list(knobs)

    def both(code: str, lang: str, *values) -> Iterator[tuple]:
        yield from fill_both(service, code, lang, dict(zip(names, values)))

    compare.run.click(both, [editor, language, *knobs.values()], [compare.status, compare.view, compare.slider, compare.traces],
                      concurrency_id="model", api_visibility="private", show_progress="hidden")
    compare.slider.change(show, [compare.slider, compare.traces], [compare.view], api_visibility="private", queue=False,
                          show_progress="hidden")


def fill_both(service: FillSource, code: str, language: str, knobs: dict) -> Iterator[tuple]:
    """(status, view, slider, traces) updates: each fill's passes live, then both fills on the slider, which starts at
    the longer fill's last pass; or a message saying why not."""
    idle = gr.Slider(0, 1, value=0, interactive=False)
    try:
        request = service.request(code or "", language)
        yield render.message("Comparing: starting the diffusion fill…", "busy"), live_view([], None), idle, None
        traces: list[list[TracePass]] = []
        for way, ltr in zip(WAYS, (False, True)):
            for update in service.run(request, {**knobs, "candidates": 1, "left_to_right": ltr}):
                if isinstance(update, FillResult):
                    traces.append(update.trace)
                    continue
                where = update.queue.describe() if update.queue is not None else f"pass {update.passes}, {update.seconds:.1f} s"
                status = render.message(f"Comparing: {way.lower()} fill ({len(traces) + 1} of 2), {where}…", "busy")
                yield status, live_view(traces, update.latest), idle, None
    except (ValueError, ModelLoadError, FillUnavailable) as err:
        yield render.message(str(err), "error"), gr.skip(), idle, None
        return
    except Exception:
        log.exception("compare failed")
        yield render.message(UNEXPECTED, "error"), gr.skip(), idle, None
        return
    if not all(traces):
        yield render.message("Nothing to compare: no slot was denoised."), EMPTY, idle, None
        return
    last = max(len(pass_positions(t)) for t in traces) - 1
    counts = ", ".join(f"{way.lower()} {counted(len(pass_positions(t)) - 1, 'pass', 'passes')}" for way, t in zip(WAYS, traces))
    done = render.message(f"Compared: {counts}. Move the slider to see both at the same pass.", "ok")
    yield done, view(traces, last), gr.Slider(0, max(last, 1), value=last, step=1, interactive=True), traces


def show(index: float, traces: list[list[TracePass]] | None):
    return gr.skip() if traces is None else view(traces, int(index))


def _box(way: str, head: str, body: str) -> str:
    return f'<div class="dg-compare-way" data-way="{way}"><h4>{head}</h4>{body}</div>'


def live_view(done: list[list[TracePass]], latest: TracePass | None) -> str:
    """While comparing: the finished fill at its last pass, the running one's latest pass, the other still waiting."""
    boxes = []
    for i, way in enumerate(WAYS):
        if i < len(done):
            positions = pass_positions(done[i])
            passes = len(positions) - 1
            body = render.canvas(done[i][positions[-1]], render.trace_caption(done[i], passes))
            boxes.append(_box(way, f"{way}: {counted(passes, 'pass', 'passes')} in all (done)", body))
        elif i == len(done) and latest is not None:
            boxes.append(_box(way, f"{way}: running", render.canvas(latest, render.live_caption(latest))))
        else:
            boxes.append(_box(way, f"{way}: waiting", f'<div class="dg-empty">Runs after the {WAYS[0].lower()} fill.</div>'
                              if i else '<div class="dg-empty">Starting…</div>'))
    return f'<div class="dg-compare-box">{"".join(boxes)}</div>'


def view(traces: list[list[TracePass]], index: int) -> str:
    """Both canvases at pass `index` (`pass_positions`: a later window's starting canvas is not a pass), each captioned
    with its pass count; a fill with fewer passes stays on its last."""
    boxes = []
    for way, trace in zip(WAYS, traces):
        positions = pass_positions(trace)
        passes = len(positions) - 1
        k = min(max(index, 0), passes)
        done = " (done)" if index >= passes else ""
        head = f"{way}: {counted(passes, 'pass', 'passes')} in all{done}"
        boxes.append(_box(way, head, render.canvas(trace[positions[k]], render.trace_caption(trace, k))))
    return f'<div class="dg-compare-box">{"".join(boxes)}</div>'
