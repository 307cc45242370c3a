"""The named API endpoints (`/fill`, `/defaults`, and the MCP tools made from them): the same Service as the page.

They never raise: bad input ends as `{"status": "error", "message": ...}` with the text unchanged.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import asdict
from typing import Any, Callable, Iterator

from .. import syntax
from ..model import ModelLoadError
from ..results import Position
from ..wiring import front_end_settings
from .service import AUTO, Progress
from .source import FillSource, FillUnavailable

log = logging.getLogger(__name__)

UNEXPECTED = "The fill failed unexpectedly; the server log has the details."


def fill_updates(service: FillSource, text: Any, language: Any, with_trace: bool, knobs: dict[str, Any],
                 stream_passes: bool = False) -> Iterator[tuple[str, dict, dict, dict]]:
    """The /fill endpoint's body (`fill_endpoint` gives it its signature): streamed progress, then the result."""
    switches = {s.name: s.default for s in front_end_settings() if s.kind is bool}
    # a switch at its knob's default is not given: the model's default applies (as for an empty number)
    overrides = {name: None if name in switches and value == switches[name] else value for name, value in knobs.items()}
    try:
        for name, value in (("text", text), ("language", language or AUTO)):
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string; it was {type(value).__name__} {value!r}.")
        live = bool(stream_passes)  # asked: every pass, each its own update; else progress only
        for update in service.run(service.request(text, language or AUTO), overrides, interval=0.0 if live else 0.1, passes=live):
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


def defaults_endpoint(service: FillSource) -> Callable[[], dict]:
    """The /defaults API function."""

    def api_defaults() -> dict:
        """The model's default sampler settings and a one-line description of the model."""
        try:
            return {"status": "ok", "model": service.describe(), "settings": asdict(service.defaults())}
        except ModelLoadError as err:
            return {"status": "error", "message": str(err)}

    return api_defaults


def _progress(update: Progress) -> dict:
    """Progress of a running fill for API clients."""
    out = {"passes": update.passes, "seconds": round(update.seconds, 3)}
    if update.queue is not None:
        out.update(queue_position=update.queue.position, queue_waiting=update.queue.waiting, queue_eta_s=update.queue.eta_seconds)
    if update.latest is not None:
        step = update.latest
        out.update(window=step.window, step=step.step, accepted=step.accepted, kept=step.kept, mean_entropy=round(step.mean_entropy, 4), draft="".join(
            piece for piece, state in zip(step.pieces, step.state) if state is not Position.OUTSIDE))
    return out


API_DOC = """Fill every <FILL>, <FILL:n> and <EDIT>old</EDIT> marker in the text with the diffusion model.

While the fill waits and while the model runs, each streamed update has the text unchanged, report
{"status": "running"} and progress in stats (while it waits: queue_position, 1 = next, queue_waiting
and queue_eta_s, the estimated seconds until it starts); the last update has the filled text. Bad input
ends with report {"status": "error", "message": ...} and the text unchanged.

Args:
    text: source code or prose containing gap markers.
    language: auto (guess from the text), text for prose, or one of %s.
%s
Returns:
    The filled text, the parse report, the stats, and the details (candidates, notes, trace).
"""
WITH_TRACE_DOC = "with_trace: include every denoising pass of the best candidate in the details."
STREAM_PASSES_DOC = ("stream_passes: while the model runs, send each pass as it is computed (its draft in the stats); "
                     "off: progress about once a second, then the result.")
WITH_TRACE_BEFORE = "exact_length"  # where with_trace has always sat: positional REST clients rely on the order


def fill_endpoint(service: FillSource) -> Callable[..., Iterator[tuple[str, dict, dict, dict]]]:
    """The /fill API function with one parameter per knob, its type hints and its docs, all from the settings;
    gr.api reads them (and the MCP tool its schema) from the signature and the docstring."""
    P = inspect.Parameter
    params = [P("text", P.POSITIONAL_OR_KEYWORD, annotation=str), P("language", P.POSITIONAL_OR_KEYWORD, default=AUTO, annotation=str)]
    docs = []
    for s in front_end_settings():
        switch = s.kind is bool
        params.append(P(s.name, P.POSITIONAL_OR_KEYWORD, default=s.default if switch else None, annotation=bool if switch else s.kind | None))
        docs.append(f"{s.name}: {s.knob.help}" + ("." if switch else f" ({s.knob.low} to {s.knob.high}; the model's default when empty)."))
    at = next((i for i, p in enumerate(params) if p.name == WITH_TRACE_BEFORE), len(params))
    params.insert(at, P("with_trace", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool))
    docs.insert(at - 2, WITH_TRACE_DOC)
    params.append(P("stream_passes", P.POSITIONAL_OR_KEYWORD, default=False, annotation=bool))  # last: positional clients
    docs.append(STREAM_PASSES_DOC)
    signature = inspect.Signature(params, return_annotation=tuple[str, dict, dict, dict])

    def api_fill(*args, **kwargs):  # a generator: gr.api reads the hint for the shape of each streamed update
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        text, language, with_trace, stream = (values.pop(k) for k in ("text", "language", "with_trace", "stream_passes"))
        yield from fill_updates(service, text, language, with_trace, values, stream)

    api_fill.__signature__ = signature
    api_fill.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
    api_fill.__doc__ = API_DOC % (", ".join(syntax.LANGUAGES[:-1]), "".join(f"    {line}\n" for line in docs))
    return api_fill
