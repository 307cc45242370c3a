"""The page: `build_demo` lays it out, `wire` connects events and API endpoints to `Handlers`.

Handlers never raise: bad input, a model that fails to load or an unexpected failure end as a
visible message in the page (or a `"status": "error"` payload for API clients), and the editor is
never written by them. The fill result lives in a gr.State; the pass slider and the candidate
picker only index it, they never run the model again.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Iterator

import gradio as gr

from .. import syntax
from ..engine import FillResult
from ..model import ModelLoadError
from . import render
from .examples import EXAMPLES, HOW_IT_WORKS
from .service import AUTO, Progress, Service

log = logging.getLogger(__name__)

# gr.Code has no Go, Rust or Java mode; the C++ one highlights their strings, comments and numbers.
EDITOR_MODES = {
    "python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "typescript",
    "c": "c", "cpp": "cpp", "go": "cpp", "rust": "cpp", "java": "cpp",
}
INT_KNOBS = {"max_passes", "stability_threshold", "seed", "candidates", "slot_budget"}
START = render.message("Pick an example or write code with a <FILL> gap, then press Fill (Ctrl+Enter).")
KEYS = (
    "Ctrl+I puts a `<FILL>` gap at the caret (over a selection, instead of it) · Ctrl+E wraps the selection "
    "in `<EDIT>…</EDIT>` · Tab indents in the editor: press Esc, then Tab, to move on"
)
UNEXPECTED = "The fill failed unexpectedly; the server log has the details."


def _knobs() -> dict[str, gr.components.Component]:
    """The sampler settings, in FillSettings' names; values come from the model on page load."""
    return {
        "max_passes": gr.Slider(1, 256, value=48, step=1, label="Max passes", info="stop after this many passes per window"),
        "entropy_bound": gr.Slider(0.01, 32, value=0.1, step=0.01, label="Entropy bound", info="higher accepts more tokens per pass: faster, riskier"),
        "t_max": gr.Slider(0.05, 2, value=0.8, step=0.05, label="t_max", info="temperature at the first pass"),
        "t_min": gr.Slider(0.05, 2, value=0.4, step=0.05, label="t_min", info="temperature at the last pass"),
        "stability_threshold": gr.Slider(0, 16, value=1, step=1, label="Stability", info="passes the draft must stay unchanged to stop early"),
        "confidence_threshold": gr.Number(0.005, label="Confidence threshold", info="stop early once the draft's entropy is below this"),
        "candidates": gr.Slider(1, 8, value=1, step=1, label="Candidates", info="fills run as one batch, then ranked (parses first)"),
        "slot_budget": gr.Slider(1, 256, value=16, step=1, label="Slot budget", info="slots for a <FILL> without a size"),
        "edit_strength": gr.Slider(0, 1, value=0.5, step=0.05, label="Edit strength", info="share of an <EDIT>'s tokens turned to noise"),
        "seed": gr.Number(0, precision=0, label="Seed", minimum=0),
        "left_to_right": gr.Checkbox(False, label="Left-to-right baseline", info="one token per pass, like an autoregressive model"),
        "exact_length": gr.Checkbox(False, label="Exact length", info="<FILL:n> gets exactly n tokens, no filler"),
    }


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


def build_demo(service: Service) -> gr.Blocks:
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
    gr.api(handlers.api_fill, api_name="fill", concurrency_id="model")
    gr.api(handlers.api_defaults, api_name="defaults")


class Handlers:
    """Event handlers; each turns every failure into a visible message."""

    def __init__(self, service: Service, page: Page):
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
        return (info, gr.skip(), *[knob_default(component, defaults[name]) for name, component in p.knobs.items()])

    def fill(self, code: str, language: str, *knobs) -> Iterator[dict]:
        """Stream the fill: each pass as it is computed (throttled), then the result."""
        p = self.page
        overrides = {name: int(v) if name in INT_KNOBS and v is not None else v for name, v in zip(p.knobs, knobs)}
        try:
            self.service.check(code or "", language)
            first = True
            if not self.service.ready:
                yield {p.status: render.message("Loading the model (first use)…", "busy")}
            for update in self.service.run(code or "", language, overrides):
                if isinstance(update, Progress):
                    yield self._live(update, clear=first)
                    first = False
                else:
                    s = update.stats
                    done = f"Filled in {s.seconds:.2f} s with {s.passes} passes. Move the pass slider to replay the denoising."
                    yield {p.status: render.message(done, "ok"), **self._result(update, 0)}
        except (ValueError, ModelLoadError) as err:  # MarkerError, SettingsError, UnknownLanguageError
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
        out[p.status] = render.message(f"Filling… pass {update.passes}, {update.seconds:.1f} s", "busy")
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

    # A generator: gr.api reads the hint for the shape of each streamed update.
    def api_fill(
        self,
        text: str,
        language: str = AUTO,
        max_passes: int | None = None,
        entropy_bound: float | None = None,
        t_max: float | None = None,
        t_min: float | None = None,
        stability_threshold: int | None = None,
        confidence_threshold: float | None = None,
        seed: int | None = None,
        candidates: int | None = None,
        slot_budget: int | None = None,
        edit_strength: float | None = None,
        left_to_right: bool = False,
        with_trace: bool = False,
        exact_length: bool = False,
    ) -> tuple[str, dict, dict, dict]:
        """Fill every <FILL>, <FILL:n> and <EDIT>old</EDIT> marker in the text with the diffusion model.

        While the model runs, each streamed update has the text unchanged, report {"status": "running"}
        and progress in stats; the last update has the filled text. Bad input ends with report
        {"status": "error", "message": ...} and the text unchanged.

        Args:
            text: source code or prose containing gap markers.
            language: auto (guess from the text), text for prose, or one of python, javascript, typescript, tsx, go, rust, java, c, cpp.
            max_passes: denoising passes per window at most (model default when empty).
            entropy_bound: summed entropy the sampler may accept per pass.
            t_max: temperature at the first pass.
            t_min: temperature at the last pass.
            stability_threshold: passes the draft must stay unchanged to stop early.
            confidence_threshold: entropy under which a stable draft stops.
            seed: random seed for the noise.
            candidates: fills run as one batch and ranked, 1 to 16.
            slot_budget: slots for a <FILL> without a size.
            edit_strength: share of an <EDIT>'s tokens re-noised, 0 to 1.
            left_to_right: baseline that commits one token per pass.
            with_trace: include every denoising pass of the best candidate in the details.
            exact_length: a <FILL:n> gets exactly n tokens (no filler), as with a model that has none.

        Returns:
            The filled text, the parse report, the stats, and the details (candidates, notes, trace).
        """
        knobs = dict(
            max_passes=max_passes, entropy_bound=entropy_bound, t_max=t_max, t_min=t_min,
            stability_threshold=stability_threshold, confidence_threshold=confidence_threshold, seed=seed,
            candidates=candidates, slot_budget=slot_budget, edit_strength=edit_strength, left_to_right=left_to_right or None,
            exact_length=exact_length or None,
        )
        try:
            for update in self.service.run(text or "", language or AUTO, knobs):
                if isinstance(update, Progress):
                    yield text, {"status": "running"}, _progress(update), {}
                else:
                    report = {"status": "done", **update.report.to_dict()}
                    yield update.text, report, asdict(update.stats), update.to_dict(with_trace=with_trace)
        except (ValueError, ModelLoadError) as err:
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
    if update.latest is not None:
        step = update.latest
        out.update(window=step.window, step=step.step, accepted=step.accepted, mean_entropy=round(step.mean_entropy, 4), draft="".join(
            piece for piece, state in zip(step.pieces, step.state) if state != "outside"))
    return out
