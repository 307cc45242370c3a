"""Many users, one model: fills that arrive while the model is busy share its next backend call.

A pass of a model is mostly fixed per-call cost (rows are cheap, calls are dear), so one worker thread runs
window steps (`Engine.step`) for a group of fills at once: the oldest fill, every other active fill with the
same `batch_key` (same sampler knobs), then waiting ones in arrival order, up to `max_batch` fills. A fill that
arrives during a step joins the next one; a fill with more windows stays in the group for its next window.
Requests are parsed and their settings validated before they are submitted, so a bad input never joins a batch,
and a step that fails anyway is retried fill by fill, so one fill's failure is reported to that fill only.
With `max_batch=1` fills run one after another, in arrival order (the serial mode, for comparison).

Each fill's passes go to its own `Ticket.updates` queue as they are computed; cancelling a fill (its cancel event)
hides its passes at once and drops it at the next step boundary, without disturbing the others.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Hashable

from .backends.base import FillCancelled
from .engine import Engine, Fill, FillRequest
from .results import FillResult
from .settings import FillSettings

# Knobs that only shape a fill's own rows (how many, their slots, their noise): fills differing in them share a
# call. Every other knob steers the sampler loop of the one backend call, so it must be equal.
ROW_KNOBS = ("seed", "candidates", "slot_budget", "edit_strength", "exact_length", "one_line")
MAX_BATCH = 32  # default: fills sharing one model call at most
QUEUE_SIZE = 64  # default: fills waiting at most before "the queue is full"
DONE = object()  # the last item of a ticket's updates: the result (or error) is ready
MOVED = object()  # an item of a waiting ticket's updates: its place in the queue changed
STEPS_AHEAD = 10_000  # the queue estimate looks this many steps ahead at most
DECAY = 0.8  # weight the step-time fit keeps for what it measured before each new step


def batch_key(settings: FillSettings) -> Hashable:
    """Fills with equal keys may share a backend call: same family, same sampler knobs. A left-to-right fill
    runs alone (its pass count follows its own free slots)."""
    if settings.left_to_right:
        return object()
    return type(settings), tuple((k, v) for k, v in asdict(settings).items() if k not in ROW_KNOBS)


class StepTimes:
    """What a window step costs, fitted to the steps measured (recent ones weigh more): seconds per pass as a line
    in the rows of the batch (a call's fixed cost plus each row's), and per `max_passes` the share of it a step runs
    (fills stop early). It starts knowing nothing: `per_pass` is 0 until a step was measured. The first step carries
    one-time work (the vocabulary decoded once, first allocations: 6 s instead of 1.6 s on the tiny model), so it
    counts only until a second one is measured."""

    def __init__(self) -> None:
        self._sums = [0.0] * 5  # weighted n, Σrows, Σs/pass, Σrows², Σrows·s/pass
        self.shares: dict[int, float] = {}  # max_passes -> passes run / max_passes, smoothed (stopping differs by knobs)
        self.measured = 0  # steps

    def add(self, rows: int, passes: int, max_passes: int, seconds: float) -> None:
        if passes < 1:
            return
        y, ratio = seconds / passes, min(1.0, passes / max_passes)
        self.measured += 1
        if self.measured == 2:
            self._sums = [0.0] * 5
        self.shares[max_passes] = DECAY * self.shares[max_passes] + (1 - DECAY) * ratio if max_passes in self.shares else ratio
        self._sums = [DECAY * a + b for a, b in zip(self._sums, (1.0, rows, y, rows * rows, rows * y))]

    def per_pass(self, rows: int) -> float:
        """Seconds of one pass over `rows` rows."""
        n, x, y, xx, xy = self._sums
        if n == 0:
            return 0.0
        spread = xx / n - (x / n) ** 2
        if spread < 1e-6:  # one batch size seen so far: in proportion to the rows
            return y / x * rows
        slope = max(0.0, (xy / n - x / n * y / n) / spread)
        return max(0.0, y / n + slope * (rows - x / n))

    def step(self, rows: int, max_passes: int) -> float:
        """Seconds of one window step over `rows` rows."""
        share = self.shares.get(max_passes, 1.0)  # knobs never measured: all passes, the most a step takes
        return self.per_pass(rows) * max(1.0, share * max_passes)


def _windows_left(fill: Fill) -> int:
    """Window steps a fill still needs, about: its most unfilled row's slots over its canvas."""
    return max((math.ceil(sum(not f for f in row.filled) / fill.canvas) for row in fill.rows), default=0)


class QueueFull(ValueError):
    """More fills are waiting than the queue holds; the message is for the user."""


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting fill stands: 1 = it starts with the next batch; the estimate is until it starts."""

    position: int
    waiting: int  # fills waiting in all
    eta_seconds: float

    def describe(self) -> str:
        return f"Waiting for the model: {self.position} of {self.waiting} in the queue, about {self.eta_seconds:.1f} s to go."


@dataclass(eq=False)
class Ticket:
    """One submitted fill: its updates (each pass as computed, then DONE) and how it ended."""

    fill: Fill
    key: Hashable
    updates: queue.Queue = field(default_factory=queue.Queue)
    result: FillResult | None = None
    error: BaseException | None = None
    ended: bool = False
    windows: int = 0  # window steps it still needs, about (`_windows_left`), kept up to date by the worker

    def end(self, result: FillResult | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.ended = result, error, True
        self.updates.put(DONE)


class Batcher:
    """The queue in front of one engine and the worker thread that steps its fills in shared batches."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH, queue_size: int = QUEUE_SIZE):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1.")
        self.engine, self.max_batch, self.queue_size = engine, max_batch, queue_size
        self._waiting: list[Ticket] = []  # arrival order, not started
        self._active: list[Ticket] = []  # started, more windows to go
        self._changed = threading.Condition()
        self.times = StepTimes()
        self._step_started: float | None = None
        self._running: list[Ticket] = []  # the group of the step in progress
        self._worker: threading.Thread | None = None
        self.sizes: Counter[int] = Counter()  # fills per backend call -> how many calls ran with that many

    @property
    def pending(self) -> int:
        """Fills waiting or being filled."""
        with self._changed:
            return len(self._waiting) + len(self._active)

    def submit(self, request: FillRequest, settings: FillSettings, cancel: threading.Event | None = None, live: bool = True,
               notes: list[str] = ()) -> Ticket:
        """Queue a parsed request with validated settings; `live`: each pass goes to its updates as computed (else
        only the result: no pass is turned into trace data for it while the batch runs); `notes` start its result's
        notes. Raises QueueFull, SettingsError."""
        updates: queue.Queue = queue.Queue()
        fill = self.engine.begin(request, settings, updates.put if live else None, cancel)
        fill.notes += notes
        ticket = Ticket(fill, (batch_key(settings), fill.canvas), updates, windows=_windows_left(fill))  # one call: one canvas length
        with self._changed:
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(f"The queue is full ({len(self._waiting)} fills waiting); try again in a moment.")
            self._waiting.append(ticket)
            ticket.updates.put(MOVED)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="dgemma-batcher", daemon=True)
                self._worker.start()
            self._changed.notify()
        return ticket

    def withdraw(self, ticket: Ticket) -> None:
        """The caller is gone: a waiting fill leaves the queue now, an active one at the end of its step."""
        with self._changed:
            if ticket in self._waiting:
                self._end(ticket, error=FillCancelled("The fill was cancelled."))

    def place(self, ticket: Ticket) -> QueuePlace | None:
        """Where a waiting fill stands, or None once it has started."""
        with self._changed:
            if ticket not in self._waiting:
                return None
            return QueuePlace(self._waiting.index(ticket) + 1, len(self._waiting), round(self._wait(ticket), 2))

    def _wait(self, ticket: Ticket) -> float:
        """Seconds until a waiting fill starts, from the measured step times: the rest of the step in progress, then
        the steps the worker picks before it (as `_pick` picks them), each fill ahead counted for the windows its
        unfilled slots still need."""
        left = {t: t.windows - (t in self._running) for t in self._active + self._waiting}
        order = [t for t in self._active + self._waiting if left[t] > 0 or t is ticket]
        wait = 0.0
        if self._step_started is not None:
            rows = sum(len(t.fill.rows) for t in self._running)
            spent = time.perf_counter() - self._step_started
            wait = max(0.0, self.times.step(rows, self._running[0].fill.settings.max_passes) - spent)
        for _ in range(STEPS_AHEAD):
            group = [t for t in order if t.key == order[0].key][: self.max_batch]
            if ticket in group:
                break
            wait += self.times.step(sum(len(t.fill.rows) for t in group), group[0].fill.settings.max_passes)
            for t in group:
                left[t] -= 1
            order = [t for t in order if left[t] > 0 or t is ticket]
        return wait

    # ------------------------------------------------------------------ the worker

    def _run(self) -> None:
        while True:
            with self._changed:
                self._drop_cancelled()
                while not self._waiting and not self._active:
                    self._changed.wait()
                    self._drop_cancelled()
                group = self._pick()
                self._step_started, self._running = time.perf_counter(), group
                self.sizes[len(group)] += 1
            rows, before = sum(len(t.fill.active) for t in group), [t.fill.passes for t in group]
            self._step(group)
            with self._changed:
                for ticket in group:
                    ticket.windows = _windows_left(ticket.fill)
                passes = max(t.fill.passes - b for t, b in zip(group, before))
                self.times.add(rows, passes, group[0].fill.settings.max_passes, time.perf_counter() - self._step_started)
                self._step_started, self._running = None, []

    def _pick(self) -> list[Ticket]:
        """The oldest fill and those that may share its call: active ones first, then waiting ones, in order."""
        candidates = self._active + self._waiting
        key = candidates[0].key
        group = [t for t in candidates if t.key == key][: self.max_batch]
        joined = [t for t in group if t in self._waiting]
        for ticket in joined:
            self._waiting.remove(ticket)
            self._active.append(ticket)
        if joined:
            self._moved()
        return group

    def _drop_cancelled(self) -> None:
        for ticket in [t for t in self._waiting + self._active if t.fill.cancelled]:
            self._end(ticket, error=FillCancelled("The fill was cancelled."))

    def _end(self, ticket: Ticket, result: FillResult | None = None, error: BaseException | None = None) -> None:
        """The fill leaves the batcher, then its caller hears how it ended."""
        with self._changed:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
                self._moved()
            if ticket in self._active:
                self._active.remove(ticket)
            ticket.end(result, error)

    def _moved(self) -> None:
        """Tell every waiting fill that its place changed (its caller need not poll)."""
        for ticket in self._waiting:
            ticket.updates.put(MOVED)

    def _step(self, group: list[Ticket]) -> None:
        """One window step for the group; a failed shared step is retried fill by fill."""
        live = [t for t in group if not t.fill.cancelled]
        working = [t.fill for t in live if t.fill.active]  # a fill with no slot (an <EDIT> at strength 0) needs no model
        try:
            if working:
                self.engine.step(working)
        except Exception as err:  # noqa: BLE001 - every failure ends up with the fill it belongs to
            if len(live) > 1 and not isinstance(err, FillCancelled):
                for ticket in live:
                    self._step([ticket])
                return
            for ticket in live:
                self._end(ticket, error=err)
            return
        for ticket in live:
            if ticket.fill.cancelled:
                self._end(ticket, error=FillCancelled("The fill was cancelled."))
            elif not ticket.fill.active:
                self._finish(ticket)

    def _finish(self, ticket: Ticket) -> None:
        try:
            result = self.engine.finish(ticket.fill)
        except Exception as err:  # noqa: BLE001
            self._end(ticket, error=err)
            return
        self._end(ticket, result)

