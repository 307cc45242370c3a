"""Fills that share a batch, on the tiny random-weight DiffusionGemma: the seed statement, the batcher's groups,
per-fill live passes, per-fill cancel, the queue place. No server here (tests/test_ui_batching.py has one)."""
from __future__ import annotations

import threading
import time

import pytest

from dgemma_app.backends.base import FillCancelled
from dgemma_app.batching import DONE, MOVED, Batcher, QueueFull, StepTimes, batch_key
from dgemma_app.engine import Engine, FillRequest

TEXTS = [  # different prefix lengths, one or two gaps, an edit, a second window
    "def add(a, b):\n    return <FILL>\n",
    "x = 1\ny = <FILL:6>\nz = 3\n",
    "import os\n\ndef f(path):\n    <EDIT>return os.path.exists(path)</EDIT>\n",
    "".join(f"v{i} = {i}\n" for i in range(20)) + "a = <FILL:20>\nb = <FILL:3>\n",
]
WAIT = 120  # seconds: two busy cores
LONG = dict(max_passes=64, confidence_threshold=1e-9, stability_threshold=64)  # every window runs all 64 passes
BUSY = dict(LONG, max_passes=63)  # as long, and never in the same batch as LONG


def requests_and_settings(engine: Engine, seed: int, **knobs) -> list[tuple[FillRequest, object]]:
    return [(FillRequest.parse(t, "python"), engine.settings(seed=seed + i, candidates=1 + i % 3, max_passes=8, **knobs))
            for i, t in enumerate(TEXTS)]


def together(engine: Engine, pairs) -> list:
    """Fill every request in shared window steps until all are done."""
    fills = [engine.begin(r, s) for r, s in pairs]
    while active := [f for f in fills if f.active]:
        engine.step(active)
    return [engine.finish(f) for f in fills]


def same_fill(a, b) -> bool:
    """Same candidates in the same ranking, the same passes, and the same tokens in every pass of every candidate
    (the starting noise included). Which tokens a pass accepted is not compared: it follows the entropies, and
    float rounding in a shared batch may tip one at the entropy bound (seen once, seed 1, the edit)."""
    return [(c.text, c.row, [p.token_ids for p in c.trace]) for c in a.candidates] == \
        [(c.text, c.row, [p.token_ids for p in c.trace]) for c in b.candidates] and a.stats.passes == b.stats.passes


def test_a_fill_is_the_same_whatever_shares_its_batch(engine):
    """The seed statement: each fill's noise comes from its own generator, so the same text, settings and seed
    give the same fill alone, in a batch of four, and beside other partners (float rounding aside: see README)."""
    for seed in range(3):
        pairs = requests_and_settings(engine, seed)
        alone = [engine.run(r, s) for r, s in pairs]
        assert all(same_fill(a, b) for a, b in zip(alone, together(engine, pairs)))
        assert all(same_fill(a, b) for a, b in zip(alone[::-1], together(engine, pairs[::-1])))  # order in the batch
        assert same_fill(alone[1], together(engine, [pairs[1], *requests_and_settings(engine, seed + 10)[2:]])[0])


def test_only_fills_with_the_same_sampler_knobs_share_a_call(engine):
    s = engine.settings(max_passes=4)
    assert batch_key(s) == batch_key(engine.settings(max_passes=4, seed=9, candidates=3, slot_budget=5, edit_strength=0.1))
    assert batch_key(s) != batch_key(engine.settings(max_passes=5))
    assert batch_key(engine.settings(left_to_right=True)) != batch_key(engine.settings(left_to_right=True))


def updates(ticket) -> list:
    """Every pass a ticket was shown, up to DONE."""
    seen = []
    while (item := ticket.updates.get(timeout=WAIT)) is not DONE:
        if item is not MOVED:
            seen.append(item)
    return seen


def first_pass(ticket) -> None:
    """Returns once the ticket was shown its first pass: the worker is inside a step for it."""
    while ticket.updates.get(timeout=WAIT) is MOVED:
        pass


@pytest.fixture()
def batcher(engine) -> Batcher:
    return Batcher(engine, max_batch=8, queue_size=3)


def busy(batcher: Batcher, engine: Engine):
    """A long fill with its own sampler knobs that occupies the model; returns once it is being filled."""
    cancel = threading.Event()
    ticket = batcher.submit(FillRequest.parse("x = <FILL:40>\n", "python"), engine.settings(**BUSY, candidates=1), cancel)
    first_pass(ticket)
    return ticket, cancel


def test_waiting_fills_share_the_next_call_each_with_its_own_passes(batcher, engine):
    pairs = requests_and_settings(engine, 3)[:2]
    alone = [engine.run(r, s) for r, s in pairs]
    blocker, stop = busy(batcher, engine)
    tickets = [batcher.submit(r, s) for r, s in pairs]
    places = [batcher.place(t) for t in tickets]
    assert [(p.position, p.waiting) for p in places] == [(1, 2), (2, 2)] and all(p.eta_seconds >= 0 for p in places)
    stop.set()
    seen = [updates(t) for t in tickets]
    assert all(t.error is None and same_fill(t.result, a) for t, a in zip(tickets, alone))
    for shown, ticket in zip(seen, tickets):  # live: its own first candidate row, pass after pass (one window each)
        first = next(c for c in ticket.result.candidates if c.row == 0)
        assert [p.step for p in shown] == list(range(1, len(shown) + 1)) and shown[-1].token_ids == first.trace[-1].token_ids
    assert batcher.sizes[2] == 1  # the two went through one backend call
    updates(blocker)
    assert isinstance(blocker.error, FillCancelled)


def test_cancelling_one_fill_leaves_the_other_intact(batcher, engine):
    request = FillRequest.parse(TEXTS[1], "python")
    settings = [engine.settings(seed=s, candidates=1, **LONG) for s in (1, 2)]
    kept_alone = engine.run(request, settings[1])
    blocker, stop = busy(batcher, engine)
    cancel = threading.Event()
    dropped = batcher.submit(request, settings[0], cancel)
    kept = batcher.submit(request, settings[1])
    stop.set()
    first_pass(dropped)  # the shared batch is running
    cancel.set()
    assert updates(kept) and kept.error is None and same_fill(kept.result, kept_alone)
    updates(dropped)
    assert isinstance(dropped.error, FillCancelled) and batcher.pending == 0


def test_a_full_queue_refuses_and_a_withdrawn_fill_leaves_it(batcher, engine):
    blocker, stop = busy(batcher, engine)
    request, settings = requests_and_settings(engine, 0)[0]
    waiting = [batcher.submit(request, settings) for _ in range(3)]
    with pytest.raises(QueueFull, match="queue is full"):
        batcher.submit(request, settings)
    batcher.withdraw(waiting[0])
    assert isinstance(waiting[0].error, FillCancelled) and batcher.place(waiting[1]).position == 1
    stop.set()
    for ticket in waiting[1:]:
        updates(ticket)
        assert ticket.error is None and ticket.result.fills


def test_a_fill_with_nothing_to_denoise_ends_without_the_model(batcher, engine):
    """An <EDIT> at strength 0 keeps its text: the fill has no slot, so it must end with its result, not an error."""
    text = "def f(x):\n    <EDIT>return x</EDIT>\n"
    ticket = batcher.submit(FillRequest.parse(text, "python"), engine.settings(edit_strength=0.0))
    updates(ticket)
    assert ticket.error is None and ticket.result.text == "def f(x):\n    return x\n" and ticket.result.stats.passes == 0


def test_step_times_fit_a_call_cost_plus_a_cost_per_row():
    times = StepTimes()
    assert times.step(4, 16) == 0.0  # nothing measured yet
    times.add(rows=2, passes=4, max_passes=16, seconds=0.4)  # 0.1 s a pass
    assert times.per_pass(4) == pytest.approx(0.2)  # one batch size seen: in proportion to the rows
    times.add(rows=2, passes=4, max_passes=16, seconds=0.4)  # the first step, with its one-time work, is dropped now
    times.add(rows=10, passes=4, max_passes=16, seconds=1.2)  # 0.3 s a pass: 0.05 + 0.025 a row
    assert times.per_pass(6) == pytest.approx(0.2, rel=0.05) and times.per_pass(20) > times.per_pass(10)
    assert times.step(6, 16) == pytest.approx(times.per_pass(6) * 4, rel=0.01)  # a quarter of max_passes runs
    assert times.step(6, 30) == pytest.approx(times.per_pass(6) * 30, rel=0.01)  # other knobs: all passes, until measured


def test_a_waiting_fill_is_told_about_how_long_it_then_waits(batcher, engine):
    """The estimate comes from measured step times: after one fill with the same knobs, a fill waiting behind a
    running one hears the rest of that step, within 50 % of the wait it then has."""
    request = FillRequest.parse("x = <FILL:12>\n", "python")
    knobs = engine.settings(**LONG, candidates=1)  # one window of all 64 passes
    for _ in range(2):  # measured (the first step's one-time work is left out once a second is measured)
        updates(batcher.submit(request, knobs))
    running = batcher.submit(request, knobs)
    first_pass(running)
    waiting = batcher.submit(request, engine.settings(**BUSY, candidates=1))  # other knobs: it cannot join
    told, asked = batcher.place(waiting).eta_seconds, time.perf_counter()
    first_pass(waiting)
    waited = time.perf_counter() - asked
    assert abs(told - waited) <= 0.5 * waited, (told, waited)
    updates(running), updates(waiting)
