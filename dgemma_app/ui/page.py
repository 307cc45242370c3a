"""The page: `build_demo` lays it out, `wire` connects events and API endpoints to `Handlers`.

Handlers never raise: bad input, a model that fails to load or an unexpected failure end as a
visible message in the page (or a `"status": "error"` payload for API clients), and the editor is
never written by them. The fill result lives in a gr.State; the pass slider and the candidate
picker only index it, they never run the model again.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import gradio as gr

from .. import syntax
from ..model import ModelLoadError
from ..results import FillResult, Position
from ..settings import Setting
from ..wiring import front_end_settings
from . import render
from .examples import EXAMPLES, HOW_IT_WORKS
from .service import AUTO, Progress
from .source import FillSource, FillUnavailable

log = logging.getLogger(__name__)

# gr.Code has no Go, Rust or Java mode; the C++ one highlights their strings, comments and numbers.
EDITOR_MODES = {
    "python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "typescript",
    "c": "c", "cpp": "cpp", "go": "cpp", "rust": "cpp", "java": "cpp",
}
START = render.message("Pick an example or write code with a <FILL> gap, then press Fill (Ctrl+Enter).")
KEYS = (
    "Ctrl+I puts a `<FILL>` gap at the caret (over a selection, instead of it) · Ctrl+E wraps the selection "
    "in `<EDIT>…</EDIT>` · Tab indents in the editor: press Esc, then Tab, to move on"
)
UNEXPECTED = "The fill failed unexpectedly; the server log has the details."


def _component(setting: Setting) -> gr.components.Component:
    """A knob's control: a checkbox for a switch, a slider where the knob gives one, else a number box."""
    k = setting.knob
    if setting.kind is bool:
        return gr.Checkbox(setting.default, label=k.label, info=k.help)
    if k.slider:
        low, high, step = k.slider
        return gr.Slider(low, high, value=setting.default, step=step, label=k.label, info=k.help)
    whole = setting.kind is int
    return gr.Number(setting.default, label=k.label, info=k.help, precision=0 if whole else None, minimum=k.low if whole else None)


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
    insert: gr.Button
    edit: gr.Button
    fill: gr.Button
    stop: gr.Button
    status: gr.HTML
    knobs: dict[str, gr.components.Component]
    badge: gr.HTML
    result: gr.HTML
    issues: gr.HTML
    candidates: gr.Radio
    stats: gr.HTML
    use: gr.Button
    canvas: gr.HTML
    slider: gr.Slider
    plot: gr.HTML
    state: gr.State

    @property
    def result_outputs(self) -> list:
        return [self.badge, self.result, self.issues, self.candidates, self.stats, self.use, self.canvas, self.slider, self.plot, self.state]


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
                    language = gr.Dropdown([AUTO, *syntax.LANGUAGES], value=AUTO, label="Language", min_width=140, scale=2)
                    insert = gr.Button("Insert gap · Ctrl+I", elem_id="dgemma-insert", scale=2)
                    edit = gr.Button("Wrap in EDIT · Ctrl+E", elem_id="dgemma-edit", scale=2)
                    fill = gr.Button("Fill · Ctrl+Enter", variant="primary", elem_id="dgemma-fill", scale=2)
                    stop = gr.Button("Stop", variant="stop", elem_id="dgemma-stop", scale=1, min_width=70)
                gr.Markdown(KEYS, elem_id="dgemma-keys")
                status = gr.HTML(START, elem_id="dgemma-status")
                gr.Examples(
                    [[text, lang] for _, lang, text in EXAMPLES], inputs=[editor, language],
                    example_labels=[label for label, _, _ in EXAMPLES], label="Examples: one click loads one",
                )
                with gr.Accordion("Settings (defaults from the model's generation_config.json)", open=False):
                    knobs = _knobs()
            with gr.Column(scale=1, min_width=420):
                gr.Markdown("### Result")
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
            with gr.Column(scale=2, min_width=320):
                plot = gr.HTML(elem_id="dgemma-plot")
        with gr.Accordion("How it works", open=True, elem_id="dgemma-how"):
            gr.Markdown(HOW_IT_WORKS)
        state = gr.State(None)
        page = Page(demo, model_info, editor, language, insert, edit, fill, stop, status, knobs, badge, result, issues, candidates, stats, use, canvas, slider, plot, state)
        wire(page, Handlers(service, page))
    return demo


def wire(page: Page, handlers: "Handlers") -> None:
    """Events of the page and the named API endpoints."""
    knobs = list(page.knobs.values())
    outputs = [page.status, *page.result_outputs]
    run = page.fill.click(
        handlers.fill, [page.editor, page.language, *knobs], outputs,
        concurrency_id="model", api_visibility="undocumented", api_name="page_fill", show_progress="hidden",
    )
    page.stop.click(handlers.stopped, None, [page.status], cancels=[run], api_visibility="private", queue=False)
    page.insert.click(None, [page.editor], [page.editor], js="(code) => window.dgemma.insertGap(code)")
    page.edit.click(None, [page.editor], [page.editor], js="(code) => window.dgemma.wrapEdit(code)")
    page.language.change(handlers.editor_mode, [page.language, page.editor], [page.editor], api_visibility="private", queue=False)
    page.slider.change(handlers.show_pass, [page.slider, page.state, page.candidates], [page.canvas, page.plot], api_visibility="private", queue=False, show_progress="hidden")
    page.candidates.input(handlers.pick, [page.candidates, page.state], page.result_outputs, api_visibility="private", queue=False)
    page.use.click(handlers.use, [page.state, page.candidates], [page.editor], api_visibility="private", queue=False)
    page.demo.load(handlers.load, None, [page.model_info, page.status, *knobs], api_visibility="private")
    gr.api(fill_endpoint(handlers), api_name="fill", concurrency_id="model")
    gr.api(handlers.api_defaults, api_name="defaults")


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
        # a knob the loaded family lacks keeps its place
        return (info, gr.skip(), *[knob_default(c, defaults[name]) if name in defaults else gr.skip() for name, c in p.knobs.items()])

    def fill(self, code: str, language: str, *knobs) -> Iterator[dict]:
        """Stream the fill: each pass as it is computed (throttled), then the result."""
        p = self.page
        try:
            request = self.service.request(code or "", language)
            first = True
            if not self.service.ready:
                yield {p.status: render.message("Loading the model (first use)…", "busy")}
            for update in self.service.run(request, dict(zip(p.knobs, knobs))):
                if isinstance(update, Progress):
                    yield self._live(update, clear=first)
                    first = False
                else:
                    s = update.stats
                    done = f"Filled in {s.seconds:.2f} s with {s.passes} passes. Move the pass slider to replay the denoising."
                    yield {p.status: render.message(done, "ok"), **self._result(update, 0)}
        except (ValueError, ModelLoadError, FillUnavailable) as err:  # MarkerError, SettingsError, UnknownLanguageError
            yield {p.status: render.message(str(err), "error"), **self._cleared()}
        except Exception:
            log.exception("fill failed")
            yield {p.status: render.message(UNEXPECTED, "error"), **self._cleared()}

    def stopped(self) -> str:
        """After Stop: the cancelled generator sets the fill's cancel event."""
        return render.message("Stopped; the model was told to stop at its next pass.", "info")

    def _live(self, update: Progress, clear: bool) -> dict:
        p = self.page
        out = self._cleared() if clear else {}
        waiting = update.queue.describe() if update.queue is not None else None
        out[p.status] = render.message(waiting or f"Filling… pass {update.passes}, {update.seconds:.1f} s", "busy")
        if update.latest is not None:
            step = update.latest
            out[p.canvas] = render.canvas(step, f"Live · window {step.window + 1} · pass {step.step}")
        return out

    def _cleared(self) -> dict:
        p = self.page
        empty = '<div class="dg-empty">No result yet.</div>'
        return {
            p.badge: "", p.result: empty, p.issues: "", p.candidates: gr.Radio(choices=[], value=None, visible=False), p.stats: "",
            p.use: gr.Button(visible=False), p.canvas: '<div class="dg-empty">No fill to show.</div>',
            p.slider: gr.Slider(0, 1, value=0, interactive=False), p.plot: "", p.state: None,
        }

    def _result(self, result: FillResult, index: int) -> dict:
        """Every result component for candidate `index` of `result`."""
        p = self.page
        c = result.candidates[index]
        last = len(c.trace) - 1
        choices = [(render.candidate_label(result, i), i) for i in range(len(result.candidates))]
        return {
            p.badge: render.badge(c.report),
            p.result: render.filled_code(c.text, c.fill_spans, c.report),
            p.issues: render.issues(c.report),
            p.candidates: gr.Radio(choices=choices, value=index, visible=True),
            p.use: gr.Button(visible=True),
            p.stats: render.stats(result.stats, result.notes),
            p.canvas: render.canvas(c.trace[last], render.trace_caption(c.trace, last)),
            p.slider: gr.Slider(0, max(last, 1), value=last, step=1, interactive=True),
            p.plot: render.plot(c.trace, last),
            p.state: result,
        }

    def show_pass(self, index: float, result: FillResult | None, candidate: int | None) -> tuple:
        """Redraw the canvas and the plot marker at one pass of the chosen candidate's trace."""
        if result is None:
            return gr.skip(), gr.skip()
        trace = result.candidates[candidate or 0].trace
        i = min(max(int(index), 0), len(trace) - 1)
        return render.canvas(trace[i], render.trace_caption(trace, i)), render.plot(trace, i)

    def pick(self, candidate: int | None, result: FillResult | None) -> dict:
        """Show another candidate."""
        if result is None or candidate is None:
            return {}
        return self._result(result, int(candidate))

    def use(self, result: FillResult | None, candidate: int | None):
        """Put the shown candidate's text into the editor."""
        return gr.skip() if result is None else result.candidates[candidate or 0].text

    def editor_mode(self, language: str, code: str) -> gr.Code:
        """Highlight the editor as the chosen (or guessed) language."""
        name = syntax.guess_language(code or "") if language == AUTO else language
        return gr.Code(language=EDITOR_MODES.get(name or ""))

    # ------------------------------------------------------------------ API

    def api_fill(self, text: str, language: str, with_trace: bool, knobs: dict[str, Any]) -> Iterator[tuple[str, dict, dict, dict]]:
        """The /fill endpoint's body (`fill_endpoint` gives it its signature): streamed progress, then the result."""
        switches = {s.name for s in front_end_settings() if s.kind is bool}
        overrides = {name: (value or None) if name in switches else value for name, value in knobs.items()}  # off = the default
        try:
            for update in self.service.run(self.service.request(text or "", language or AUTO), overrides):
                if isinstance(update, Progress):
                    yield text, {"status": "running"}, _progress(update), {}
                else:
                    report = {"status": "done", **update.report.to_dict()}
                    yield update.text, report, asdict(update.stats), update.to_dict(with_trace=with_trace)
        except (ValueError, ModelLoadError, FillUnavailable) as err:
            yield text, {"status": "error", "message": str(err)}, {}, {}
        except Exception:
            log.exception("API fill failed")
            yield text, {"status": "error", "message": UNEXPECTED}, {}, {}

    def api_defaults(self) -> dict:
        """The model's default sampler settings and a one-line description of the model."""
        try:
            return {"status": "ok", "model": self.service.describe(), "settings": asdict(self.service.defaults())}
        except ModelLoadError as err:
            return {"status": "error", "message": str(err)}


def _progress(update: Progress) -> dict:
    """Progress of a running fill for API clients."""
    out = {"passes": update.passes, "seconds": round(update.seconds, 3)}
    if update.queue is not None:
        out.update(queue_position=update.queue.position, queue_waiting=update.queue.waiting, queue_eta_s=update.queue.eta_seconds)
    if update.latest is not None:
        step = update.latest
        out.update(window=step.window, step=step.step, accepted=step.accepted, mean_entropy=round(step.mean_entropy, 4), draft="".join(
            piece for piece, state in zip(step.pieces, step.state) if state is not Position.OUTSIDE))
    return out


API_DOC = """Fill every <FILL>, <FILL:n> and <EDIT>old</EDIT> marker in the text with the diffusion model.

While the fill waits and while the model runs, each streamed update has the text unchanged, report
{"status": "running"} and progress in stats (while it waits: queue_position, 1 = next, queue_waiting
and queue_eta_s, the estimated seconds until it starts); the last update has the filled text. Bad input ends with report
{"status": "error", "message": ...} and the text unchanged.

Args:
    text: source code or prose containing gap markers.
    language: auto (guess from the text), text for prose, or one of %s.
%s
Returns:
    The filled text, the parse report, the stats, and the details (candidates, notes, trace).
"""
WITH_TRACE_DOC = "with_trace: include every denoising pass of the best candidate in the details."
WITH_TRACE_BEFORE = "exact_length"  # where with_trace has always sat: positional REST clients rely on the order


def fill_endpoint(handlers: Handlers) -> Callable[..., Iterator[tuple[str, dict, dict, dict]]]:
    """The /fill API function with one parameter per knob, its type hints and its docs, all from the settings;
    gr.api reads them (and the MCP tool its schema) from the signature and the docstring."""
    P = inspect.Parameter
    params = [P("text", P.POSITIONAL_OR_KEYWORD, annotation=str), P("language", P.POSITIONAL_OR_KEYWORD, default=AUTO, annotation=str)]
    docs = []
    for s in front_end_settings():
        switch = s.kind is bool
        params.append(P(s.name, P.POSITIONAL_OR_KEYWORD, default=False if switch else None, annotation=bool if switch else s.kind | None))
        docs.append(f"{s.name}: {s.knob.help}" + ("." if switch else f" ({s.knob.low} to {s.knob.high}; the model's default when empty)."))
    at = next((i for i, p in enumerate(params) if p.name == WITH_TRACE_BEFORE), len(params))
    params.insert(at, P("with_trace", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool))
    docs.insert(at - 2, WITH_TRACE_DOC)
    signature = inspect.Signature(params, return_annotation=tuple[str, dict, dict, dict])

    def api_fill(*args, **kwargs):  # a generator: gr.api reads the hint for the shape of each streamed update
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        yield from handlers.api_fill(values.pop("text"), values.pop("language"), values.pop("with_trace"), values)

    api_fill.__signature__ = signature
    api_fill.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
    api_fill.__doc__ = API_DOC % (", ".join(syntax.LANGUAGES[:-1]), "".join(f"    {line}\n" for line in docs))
    return api_fill
