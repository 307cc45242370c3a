"""The page: `build_demo` lays it out, `wire` connects events and API endpoints to `Handlers`.

Handlers never raise: bad input, a model that fails to load or an unexpected failure end as a
visible message in the page (or a `"status": "error"` payload for API clients), and the editor is
never written by them. The fill result lives in a gr.State; the pass slider and the candidate
picker only index it, they never run the model again.
"""
from __future__ import annotations

import logging
from pathlib import Path
from dataclasses import asdict, dataclass
from typing import Iterator

import gradio as gr

from .. import syntax
from ..model import DEFAULT_MODEL_DIR, PROJECT_ROOT, ModelLoadError
from ..results import FillResult, FillStats, counted
from ..settings import Setting
from ..trace import pass_positions
from ..wiring import front_end_settings
from . import render
from .compare import Compare, build_compare, wire_compare
from .examples import EXAMPLES, HOW_IT_WORKS, TEACHING_EXAMPLE
from .player import Player, build_player, wire_player
from .api import UNEXPECTED, defaults_endpoint, fill_endpoint
from .service import AUTO, Progress, resolve_language
from .source import FillSource, FillUnavailable
from .teaching import teaching_note, teaching_values

log = logging.getLogger(__name__)

# gr.Code has no Go, Rust or Java mode; the C++ one highlights their strings, comments and numbers.
EDITOR_MODES = {
    "python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "typescript",
    "c": "c", "cpp": "cpp", "go": "cpp", "rust": "cpp", "java": "cpp",
}
START = render.message("Pick an example or write code with a <FILL> gap, then press Fill (Ctrl+Enter).")
README = PROJECT_ROOT / "README.md"  # served to the page (ui.launch allows this one file)
README_URL = f"/gradio_api/file={README}"
TOY_MODEL = (
    "\n\nThis is the embedded toy model (14.5M parameters, trained for 11 minutes on one GPU): its fills are often "
    "wrong, but every pass of its decoding is real, which is what this page shows. For useful fills start "
    "the app on a DiffusionGemma "
    "checkpoint: download it once (the app never downloads), then start the app on it offline:\n\n"
    "    hf download google/diffusiongemma-26B-A4B-it\n"
    "    HF_HUB_OFFLINE=1 python app.py --model google/diffusiongemma-26B-A4B-it --device-map auto --dtype bf16\n\n"
    f"About 52 GB in bf16 ([README]({README_URL}), section *Configuration, Docker, the real model*)."
)
IDLE = gr.update(interactive=False)  # Stop while nothing runs
NOTHING_DENOISED = render.message("Nothing was denoised: an <EDIT> at strength 0 keeps its text, so there are no passes to show.")
NOTHING_TO_FILL = (
    "Nothing to fill: an <EDIT> at strength 0 keeps its old text, so the model made no passes. "
    "Raise Edit strength (Settings) to have it rewritten."
)
KEYS = (
    "In the editor: Ctrl+I puts a `<FILL>` gap at the caret (over a selection, instead of it) · Ctrl+E wraps the "
    "selection in `<EDIT>…</EDIT>` · Ctrl+Enter fills · Tab indents: press Esc, then Tab, to move on"
)


def _component(setting: Setting) -> gr.components.Component:
    """A knob's control: a checkbox for a switch, a slider where the knob gives one, else a number box."""
    k = setting.knob
    if setting.kind is bool:
        return gr.Checkbox(setting.default, label=k.label, info=k.help)
    if k.slider:
        low, high, step = k.slider
        return gr.Slider(low, high, value=setting.default, step=step, label=k.label, info=k.help)
    # no minimum: Gradio's own range check would answer with a toast that does not name the knob; the settings do
    return gr.Number(setting.default, label=k.label, info=k.help, precision=0 if setting.kind is int else None)


def _knobs() -> dict[str, gr.components.Component]:
    """The sampler settings, in the settings' field names; values come from the model on page load."""
    return {s.name: _component(s) for s in front_end_settings()}


def knob_default(component: gr.components.Component, value):
    """A model's default outside a slider's range widens the range, so the next fill is not refused for it."""
    if isinstance(component, gr.Slider) and isinstance(value, (int, float)):
        return gr.update(value=value, minimum=min(component.minimum, value), maximum=max(component.maximum, value))
    return value


@dataclass
class Page:
    """Every component the handlers read or write."""

    demo: gr.Blocks
    model_info: gr.Markdown
    editor: gr.Code
    language: gr.Dropdown
    detected: gr.HTML  # what auto takes the text as
    mode: gr.State  # the editor's [highlighting, wraps] as last set
    insert: gr.Button
    edit: gr.Button
    fill: gr.Button
    stop: gr.Button
    status: gr.HTML
    teaching: gr.Checkbox
    teaching_note: gr.Markdown
    knobs: dict[str, gr.components.Component]
    notice: gr.HTML  # above a kept result: the fill after it was refused
    badge: gr.HTML
    result: gr.HTML
    issues: gr.HTML
    candidates: gr.Radio
    stats: gr.HTML
    use: gr.Button
    canvas: gr.HTML
    slider: gr.Slider
    plot: gr.HTML
    player: Player
    compare: Compare
    state: gr.State

    @property
    def result_outputs(self) -> list:
        return [self.notice, self.badge, self.result, self.issues, self.candidates, self.stats, self.use, self.canvas, self.slider,
                self.plot, self.state]


def build_demo(service: FillSource) -> gr.Blocks:
    """The whole page, wired; no model is loaded here."""
    with gr.Blocks(title="DiffusionGemma fill-in") as demo:
        gr.Markdown(
            "# Fill gaps in code with a diffusion model\n"
            "Mark gaps with `<FILL>`, `<FILL:n>` (at most *n* tokens) or `<EDIT>old code</EDIT>`. "
            "The model fills them while reading the code on **both** sides, tree-sitter checks the result, "
            "and you can watch every denoising pass.",
            elem_id="dgemma-intro",
        )
        model_info = gr.Markdown(f"Model: `{service.source}` (loads on first use)", elem_id="dgemma-model")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=420):
                editor = gr.Code(
                    EXAMPLES[0][2], language="python", label="Your code with gaps", lines=14, max_lines=32,
                    interactive=True, elem_id="dgemma-editor",
                )
                with gr.Row(elem_id="dgemma-actions"):
                    language = gr.Dropdown([AUTO, *syntax.LANGUAGES], value=AUTO, label="Language", min_width=140, scale=2, elem_id="dgemma-language")
                    insert = gr.Button("Insert gap · Ctrl+I", elem_id="dgemma-insert", scale=2)
                    edit = gr.Button("Wrap in EDIT · Ctrl+E", elem_id="dgemma-edit", scale=2)
                    fill = gr.Button("Fill · Ctrl+Enter", variant="primary", elem_id="dgemma-fill", scale=2)
                    stop = gr.Button("Stop", variant="stop", elem_id="dgemma-stop", scale=1, min_width=70, interactive=False)
                detected = gr.HTML(render.detected(resolve_language(EXAMPLES[0][2], AUTO), True), elem_id="dgemma-detected")
                gr.Markdown(KEYS, elem_id="dgemma-keys")
                status = gr.HTML(START, elem_id="dgemma-status")
                teaching = gr.Checkbox(False, label="Teaching mode: slow the sampler down to watch it", elem_id="dgemma-teaching")
                note = gr.Markdown(visible=False, elem_id="dgemma-teaching-note")
                gr.Examples(
                    [[text, lang, label == TEACHING_EXAMPLE] for label, lang, text in EXAMPLES], inputs=[editor, language, teaching],
                    example_labels=[label for label, _, _ in EXAMPLES], label="Examples: one click loads one",
                )
                with gr.Accordion("Settings (defaults from the model's generation_config.json)", open=False, elem_id="dgemma-settings"):
                    knobs = _knobs()
            with gr.Column(scale=1, min_width=420):
                gr.Markdown("### Result")
                notice = gr.HTML(elem_id="dgemma-notice")
                badge = gr.HTML(elem_id="dgemma-badge")
                result = gr.HTML('<div class="dg-empty">The filled code appears here, each fill highlighted.</div>', elem_id="dgemma-result")
                issues = gr.HTML(elem_id="dgemma-issues")
                candidates = gr.Radio([], label="Candidates, best first (pick one to see it)", elem_id="dgemma-candidates", visible=False)
                stats = gr.HTML(elem_id="dgemma-stats")
                use = gr.Button("Copy this result into the editor", size="sm", visible=False)
        gr.Markdown("## Watch the denoising\nDuring a fill the canvas shows each pass live; afterwards the slider steps through every pass.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                canvas = gr.HTML('<div class="dg-empty">The canvas appears here during a fill.</div>', elem_id="dgemma-canvas")
                slider = gr.Slider(0, 1, value=0, step=1, label="Pass", info="every pass of every window, in order", interactive=False, elem_id="dgemma-pass")
                player = build_player()
            with gr.Column(scale=2, min_width=320):
                plot = gr.HTML(elem_id="dgemma-plot")
        compare = build_compare()
        with gr.Accordion("How it works", open=True, elem_id="dgemma-how"):
            gr.Markdown(HOW_IT_WORKS + render.states_markdown())
        state = gr.State(None)
        page = Page(
            demo, model_info, editor, language, detected, gr.State(None), insert, edit, fill, stop, status, teaching, note, knobs,
            notice, badge, result, issues, candidates, stats, use, canvas, slider, plot, player, compare, state,
        )
        wire(page, Handlers(service, page))
    return demo


def wire(page: Page, handlers: "Handlers") -> None:
    """Events of the page and the named API endpoints."""
    knobs = list(page.knobs.values())
    outputs = [page.status, page.stop, page.detected, *page.result_outputs]
    start = page.fill.click(  # Stop works while the fill waits in the queue too; the live canvas scrolls into view
        lambda: gr.Button(interactive=True), None, [page.stop], api_visibility="private", queue=False, js="() => window.dgemma.followFill()",
    )
    run = start.then(  # after Stop is enabled, so the fill's last update (Stop disabled) always comes later
        handlers.fill, [page.state, page.editor, page.language, *knobs], outputs,
        concurrency_id="model", api_visibility="undocumented", api_name="page_fill", show_progress="hidden",
    )
    page.stop.click(handlers.stopped, None, [page.status, page.stop], cancels=[run], api_visibility="private", queue=False)
    page.insert.click(None, [page.editor], [page.editor], js="(code) => window.dgemma.insertGap(code)")
    page.edit.click(None, [page.editor], [page.editor], js="(code) => window.dgemma.wrapEdit(code)")
    for event in (page.language.change, page.editor.change):  # auto follows the text as it is typed: prose wraps at once
        event(handlers.editor_mode, [page.language, page.editor, page.mode], [page.editor, page.detected, page.mode],
              api_visibility="private", queue=False, trigger_mode="always_last", show_progress="hidden")
    page.teaching.change(handlers.teach, [page.teaching], [page.teaching_note, *knobs], api_visibility="private", queue=False)
    wire_compare(page.compare, handlers.service, page.editor, page.language, page.knobs)
    wire_player(page.player, page.slider, page.state, page.candidates, stop_on=[page.fill.click, page.candidates.input])
    page.slider.change(handlers.show_pass, [page.slider, page.state, page.candidates], [page.canvas, page.plot], api_visibility="private", queue=False, show_progress="hidden")
    page.candidates.input(handlers.pick, [page.candidates, page.state], page.result_outputs, api_visibility="private", queue=False)
    page.use.click(handlers.use, [page.state, page.candidates], [page.editor], api_visibility="private", queue=False)
    page.demo.load(handlers.load, None, [page.model_info, page.status, *knobs], api_visibility="private")
    gr.api(fill_endpoint(handlers.service), api_name="fill", concurrency_id="model")
    gr.api(defaults_endpoint(handlers.service), api_name="defaults")


class Handlers:
    """Event handlers; each turns every failure into a visible message."""

    def __init__(self, service: FillSource, page: Page):
        self.service = service
        self.page = page

    # ------------------------------------------------------------------ page

    def load(self) -> tuple:
        """On page open: load the model (first use) and show its settings, or say why it cannot load."""
        p = self.page
        try:
            info, defaults = self.service.describe(), asdict(self.service.defaults())
        except ModelLoadError as err:
            return (f"Model: `{self.service.source}` could not be loaded", render.message(str(err), "error"), *[gr.skip()] * len(p.knobs))
        if Path(self.service.source or DEFAULT_MODEL_DIR).resolve() == DEFAULT_MODEL_DIR.resolve():
            info += TOY_MODEL
        # a knob the loaded family lacks keeps its place
        return (info, gr.skip(), *[knob_default(c, defaults[name]) if name in defaults else gr.skip() for name, c in p.knobs.items()])

    def teach(self, on: bool) -> tuple:
        """Teaching mode on: its settings and a note on what they change; off: the model's settings back."""
        knobs = front_end_settings()
        try:
            defaults = asdict(self.service.defaults())
        except ModelLoadError as err:
            return gr.Markdown(f"⚠ {err}", visible=True), *[gr.skip()] * len(self.page.knobs)
        values = teaching_values(knobs, defaults, on)
        note = gr.Markdown(teaching_note(knobs, defaults), visible=on)
        return note, *[knob_default(c, values[name]) if name in values else gr.skip() for name, c in self.page.knobs.items()]

    def fill(self, previous: FillResult | None, code: str, language: str, *knobs) -> Iterator[dict]:
        """Stream the fill: each pass as it is computed (throttled), then the result. A fill refused before the model
        starts leaves the previous result in place, with a line above it saying it is the previous one."""
        p = self.page
        first = True
        try:
            request = self.service.request(code or "", language)
            if not self.service.ready:
                yield {p.status: render.message("Loading the model (first use)…", "busy")}
            for update in self.service.run(request, dict(zip(p.knobs, knobs))):
                if isinstance(update, Progress):
                    yield self._live(update, clear=first)
                    first = False
                else:
                    yield {p.status: render.message(self._done(update.stats), "ok"), p.stop: IDLE,
                           p.detected: render.detected(update.language, language == AUTO), **self._result(update, 0)}
        except Exception as err:
            known = isinstance(err, (ValueError, ModelLoadError, FillUnavailable))  # MarkerError, SettingsError, UnknownLanguageError
            if not known:
                log.exception("fill failed")
            out = {p.status: render.message(str(err) if known else UNEXPECTED, "error"), p.stop: IDLE}
            if not first:  # the result was already cleared for this fill's live passes
                out.update(self._cleared())
            elif previous is not None:
                out[p.notice] = render.message("The fill you asked for was refused (see the message under the editor); this is the result before it.")
            yield out

    @staticmethod
    def _done(stats: FillStats) -> str:
        """The status line after a fill."""
        if not stats.passes:
            return NOTHING_TO_FILL
        passes = counted(stats.passes, "pass", "passes")
        return f"Filled in {stats.seconds:.2f} s; the best candidate took {passes}. Press Play or move the pass slider to replay them."

    def stopped(self) -> tuple:
        """After Stop (enabled only while a fill runs or waits): the cancelled generator sets the fill's cancel event."""
        return render.message("Stopped; the model was told to stop at its next pass.", "info"), IDLE

    def _live(self, update: Progress, clear: bool) -> dict:
        p = self.page
        out = self._cleared() if clear else {}
        waiting = update.queue.describe() if update.queue is not None else None
        out[p.status] = render.message(waiting or f"Filling… pass {update.passes}, {update.seconds:.1f} s", "busy")
        if update.latest is not None:
            step = update.latest
            out[p.canvas] = render.canvas(step, render.live_caption(step))
        return out

    def _cleared(self) -> dict:
        p = self.page
        empty = '<div class="dg-empty">No result yet.</div>'
        return {
            p.notice: "", p.badge: "", p.result: empty, p.issues: "", p.candidates: gr.Radio(choices=[], value=None, visible=False), p.stats: "",
            p.use: gr.Button(visible=False), p.canvas: '<div class="dg-empty">No fill to show.</div>',
            p.slider: gr.Slider(0, 1, value=0, interactive=False), p.plot: "", p.state: None,
        }

    def _result(self, result: FillResult, index: int) -> dict:
        """Every result component for candidate `index` of `result`."""
        p = self.page
        c = result.candidates[index]
        positions = pass_positions(c.trace)
        last = len(positions) - 1  # the pass count; -1: nothing was denoised (an <EDIT> at strength 0)
        choices = [(render.candidate_label(result, i), i) for i in range(len(result.candidates))]
        return {
            p.notice: "",
            p.badge: render.badge(c.report),
            p.result: render.filled_code(c.text, c.fill_spans, c.report),
            p.issues: render.issues(c.report),
            p.candidates: gr.Radio(choices=choices, value=index, visible=True),
            p.use: gr.Button(visible=True),
            p.stats: render.stats(FillStats.of(c, result.stats.seconds, result.stats.windows), result.notes),
            p.canvas: render.canvas(c.trace[positions[last]], render.trace_caption(c.trace, last)) if c.trace else NOTHING_DENOISED,
            p.slider: gr.Slider(0, max(last, 1), value=max(last, 0), step=1, interactive=bool(c.trace)),
            p.plot: render.plot(c.trace, last),
            p.state: result,
        }

    def show_pass(self, index: float, result: FillResult | None, candidate: int | None) -> tuple:
        """Redraw the canvas and the plot marker at one pass of the chosen candidate's trace."""
        if result is None:
            return gr.skip(), gr.skip()
        trace = result.candidates[candidate or 0].trace
        if not trace:
            return gr.skip(), gr.skip()
        positions = pass_positions(trace)
        k = min(max(int(index), 0), len(positions) - 1)
        return render.canvas(trace[positions[k]], render.trace_caption(trace, k)), render.plot(trace, k)

    def pick(self, candidate: int | None, result: FillResult | None) -> dict:
        """Show another candidate."""
        if result is None or candidate is None:
            return {}
        return self._result(result, int(candidate))

    def use(self, result: FillResult | None, candidate: int | None):
        """Put the shown candidate's text into the editor."""
        return gr.skip() if result is None else result.candidates[candidate or 0].text

    def editor_mode(self, language: str, code: str, shown: list | None) -> tuple:
        """Highlight the editor as the chosen language, or as the one a fill would take the text as (auto), and say
        which; prose wraps. The editor is only updated when that changes, so typing is never disturbed."""
        try:
            name = resolve_language(code or "", language)
        except ValueError:  # auto found no language
            name = None
        mode = [EDITOR_MODES.get(name or ""), name == syntax.TEXT]
        editor = gr.skip() if mode == shown else gr.Code(language=mode[0], wrap_lines=mode[1])
        return editor, render.detected(name, language == AUTO) if (code or "").strip() else "", mode


