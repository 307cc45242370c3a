"""The model behind the page: loaded once on first use, filled in a worker thread, streamed pass by pass.

No Gradio here: the page and the API endpoints both iterate `Service.run`, which yields `Progress`
while the model works and the `FillResult` at the end. Closing the iterator early (the browser tab
went away, the client cancelled) sets the fill's cancel event, so the model stops at its next pass.
"""
from __future__ import annotations

import argparse
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .. import syntax
from ..backends.base import LoadedModel
from ..engine import Engine, FillRequest
from ..gaps import Limits
from ..prose import guess_language
from ..results import FillResult, TracePass
from ..settings import FillSettings
from ..wiring import limits_from_args, load_from_args

AUTO = "auto"
_DONE = object()


@dataclass
class Progress:
    """The latest pass the model computed, how many so far, and the time since the fill started."""

    latest: TracePass | None
    passes: int
    seconds: float


def resolve_language(text: str, language: str) -> str:
    """The language to check the fill as; `auto` guesses from the text. Raises UnknownLanguageError."""
    if language.strip().lower() == AUTO:
        guess = guess_language(text)
        if guess is None:
            raise syntax.UnknownLanguageError(
                "Could not tell the language from the text; pick one in the Language menu (text for prose)."
            )
        return guess
    try:
        return syntax.language_for(None, language)
    except syntax.UnknownLanguageError as err:
        raise syntax.UnknownLanguageError(f"{err} Or choose {AUTO} to guess it from the text.") from None


class Service:
    """One model for every session, loaded lazily and thread-safely, plus the request limits."""

    def __init__(self, load: Callable[[], LoadedModel], source: str, limits: Limits = Limits()):
        self._load = load
        self.source = source
        self.limits = limits
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._running = 0
        self._count = threading.Lock()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Service":
        return cls(lambda: load_from_args(args), args.model, limits_from_args(args))

    @property
    def running(self) -> int:
        """Fills whose worker thread is still alive (the model is working for them)."""
        return self._running

    def _add_running(self, delta: int) -> None:
        with self._count:
            self._running += delta

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def engine(self) -> Engine:
        """The engine, loading the model on first use. Raises ModelLoadError (retried on the next call)."""
        with self._lock:
            if self._engine is None:
                self._engine = Engine(self._load())
            return self._engine

    def describe(self) -> str:
        """One Markdown line about the loaded model (loads it)."""
        loaded = self.engine().loaded
        filler = "yes" if loaded.null_id is not None else "no"
        return f"Model: `{loaded.source}` · canvas {loaded.canvas_length} tokens · `<null>` filler: {filler} · {loaded.device}"

    def defaults(self) -> FillSettings:
        """Sampler defaults from the model's generation_config.json (loads the model)."""
        return self.engine().settings()

    def request(self, text: str, language: str) -> FillRequest:
        """Markers, limits and language checked once, before any model work. Raises ValueError for the user."""
        return FillRequest.parse(text, language, self.limits, resolve_language)

    def run(self, request: FillRequest, overrides: dict, interval: float = 0.1) -> Iterator[Progress | FillResult]:
        """Fill in a worker thread. Yields Progress at most every `interval` seconds (the model is never
        waited on), then the FillResult. Raises SettingsError / ModelLoadError for bad settings or model."""
        engine = self.engine()
        settings = engine.settings(**overrides)
        cancel = threading.Event()
        passes: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["result"] = engine.run(request, settings, on_pass=passes.put, cancel=cancel)
            except BaseException as err:  # handed to the caller's thread below
                outcome["error"] = err
            finally:
                self._add_running(-1)
                passes.put(_DONE)

        self._add_running(1)
        worker = threading.Thread(target=work, name="dgemma-fill", daemon=True)
        started = time.perf_counter()
        worker.start()
        try:
            latest, count, done = None, 0, False
            while not done:
                deadline = time.monotonic() + interval
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        item = passes.get(timeout=left)
                    except queue.Empty:
                        break
                    if item is _DONE:
                        done = True
                        break
                    latest, count = item, count + 1
                if not done:
                    yield Progress(latest, count, time.perf_counter() - started)
            worker.join()
            if "error" in outcome:
                raise outcome["error"]
            yield outcome["result"]
        finally:
            cancel.set()
