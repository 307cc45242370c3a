"""The model behind the page: loaded once on first use, filled by the batcher's worker, streamed pass by pass.

No Gradio here: the page and the API endpoints both iterate `Service.run`, which yields `Progress`
while the fill waits (with its place in the queue) and while the model works, and the `FillResult` at
the end. Fills that arrive while the model is busy share its next call (`batching`). Closing the iterator
early (the browser tab went away, the client cancelled) cancels that fill only: it leaves the queue, or its
rows stop being shown and are dropped at the next window, while the fills sharing its batch go on.
"""
from __future__ import annotations

import argparse
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from .. import syntax
from ..backends.base import LoadedModel
from ..batching import DONE, MAX_BATCH, MOVED, QUEUE_SIZE, Batcher, QueuePlace
from ..engine import Engine, FillRequest
from ..gaps import Limits
from ..results import FillResult, TracePass
from ..settings import FillSettings
from ..wiring import limits_from_args, load_from_args

AUTO = syntax.AUTO
HEARTBEAT = 1.0  # seconds: a waiting client hears at least this often, news or not
QUIET = 4  # fills in the service up to which each client hears of passes every `interval`
BUSY = 8  # fills in the service from which a fill at the default candidates runs one (`under_load`)


def update_interval(pending: int, interval: float) -> float:
    """Seconds between a live fill's updates: `interval` while at most QUIET fills are in the service, then longer in
    proportion, up to HEARTBEAT. Each update is web work for the one server process (under the same GIL as the
    model's Python); the page still shows every pass from the result's trace."""
    return min(HEARTBEAT, interval * max(1.0, pending / QUIET))


@dataclass
class Progress:
    """The latest pass the model computed, how many so far, the time since the fill was submitted, and, while
    it waits for the model, its place in the queue."""

    latest: TracePass | None
    passes: int
    seconds: float
    queue: QueuePlace | None = None


def resolve_language(text: str, language: str) -> str:
    """The language to check the fill as; `auto` detects it from the text. Raises UnknownLanguageError."""
    try:
        return syntax.language_of(text, None, language)[0]
    except syntax.UnknownLanguageError as err:
        how = ("Please pick one in the Language menu (text for prose)." if syntax.detects(None, language)
               else f"Or choose {AUTO} to detect it from the text.")
        raise syntax.UnknownLanguageError(f"{err} {how}") from None


def under_load(settings: FillSettings, defaults: FillSettings, pending: int) -> tuple[FillSettings, str | None]:
    """The candidates policy: with BUSY or more fills in the service, a fill left at the default candidates runs
    one (each candidate is a row of every pass, so this halves its compute at the default 2), and its notes say so.
    A fill that asked for another number keeps it."""
    if pending < BUSY or settings.candidates == 1 or settings.candidates != defaults.candidates:
        return settings, None
    note = (f"The model was busy ({pending} fills in line), so this fill ran 1 candidate instead of {settings.candidates}; "
            "fill again when it is quieter for more.")
    return replace(settings, candidates=1), note


class Service:
    """One model for every session, loaded lazily and thread-safely, plus the request limits."""

    def __init__(self, load: Callable[[], LoadedModel], source: str, limits: Limits = Limits(), max_batch: int = MAX_BATCH,
                 queue_size: int = QUEUE_SIZE):
        self._load = load
        self.source = source
        self.limits = limits
        self.max_batch, self.queue_size = max_batch, queue_size
        self._batcher: Batcher | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Service":
        return cls(lambda: load_from_args(args), args.model, limits_from_args(args), args.max_batch, args.queue_size)

    @property
    def running(self) -> int:
        """Fills waiting for the model or being filled."""
        return self._batcher.pending if self._batcher is not None else 0

    @property
    def capacity(self) -> int:
        """Fills the service holds at once: a batch running and a full queue waiting."""
        return self.max_batch + self.queue_size

    @property
    def ready(self) -> bool:
        return self._batcher is not None

    def engine(self) -> Engine:
        """The engine, loading the model on first use. Raises ModelLoadError (retried on the next call)."""
        return self.batcher().engine

    def batcher(self) -> Batcher:
        """The queue and worker in front of the model (loads it on first use)."""
        with self._lock:
            if self._batcher is None:
                self._batcher = Batcher(Engine(self._load()), self.max_batch, self.queue_size)
            return self._batcher

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

    def run(self, request: FillRequest, overrides: dict, interval: float = 0.1, passes: bool = True) -> Iterator[Progress | FillResult]:
        """Queue the fill for the model. Yields Progress when there is news (a pass when `passes`, a new place in
        the queue; at most every `update_interval` seconds, the model is never waited on) or else every `HEARTBEAT`
        seconds, then the FillResult. Without `passes` no pass is made into trace data while the batch runs, and
        Progress counts the passes of the windows done. Raises SettingsError / ModelLoadError for bad settings or
        model, and QueueFull (a ValueError) when the queue is full."""
        batcher = self.batcher()
        settings, busy = under_load(batcher.engine.settings(**overrides), batcher.engine.settings(), batcher.pending)
        cancel = threading.Event()
        started = time.perf_counter()
        ticket = batcher.submit(request, settings, cancel, live=passes, notes=[busy] if busy else [])
        try:
            latest, count, done = None, 0, False
            while not done:
                deadline = None  # set by the first news: then gather more until `interval` has passed
                while (left := HEARTBEAT if deadline is None else deadline - time.monotonic()) > 0:
                    try:
                        item = ticket.updates.get(timeout=left)
                    except queue.Empty:
                        break
                    if item is DONE:
                        done = True
                        break
                    if item is not MOVED:
                        latest, count = item, count + 1
                    deadline = deadline or time.monotonic() + update_interval(batcher.pending, interval)
                if not done:
                    yield Progress(latest, count if passes else ticket.fill.passes, time.perf_counter() - started, batcher.place(ticket))
            if ticket.error is not None:
                raise ticket.error
            yield ticket.result
        finally:
            cancel.set()
            batcher.withdraw(ticket)
