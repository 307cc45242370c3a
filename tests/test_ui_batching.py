"""Several clients at once through the real server (gradio_client, in process, the tiny random-weight model):
fills that wait for the model share its next call, each client streams its own passes and gets its own result,
one client's cancel or bad input leaves the others alone, and a waiting client hears its place in the queue.
Each user has its own Client (its own session): Gradio cancels every job of a session on one endpoint at once."""
from __future__ import annotations

import pytest
from gradio_client import Client

from dgemma_app.gaps import Limits
from dgemma_app.ui import Service, build_demo, launch

WAIT = 120  # seconds: two busy cores
BUSY = dict(text="x = <FILL:40>\n", language="python", candidates=1, max_passes=63, confidence_threshold=1e-9, stability_threshold=63)
LONG = dict(language="python", candidates=1, max_passes=64, confidence_threshold=1e-9, stability_threshold=64)
TEXTS = ["def add(a, b):\n    return <FILL:6>\n", "x = 1\ny = <FILL:6>\nz = 3\n"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_loaded):
    service = Service(lambda: tiny_loaded, "tiny test model", Limits(max_bytes=4096), max_batch=8, queue_size=8)
    demo = build_demo(service)
    url = launch(demo, port=None, concurrency=service.capacity, queue_size=8, block=False)
    yield url, service
    demo.close()


def user(url: str) -> Client:
    return Client(url, verbose=False)


def occupied(url: str):
    """A long fill with its own sampler knobs, running: fills submitted now wait for the model together."""
    job = user(url).submit(**BUSY, api_name="/fill")
    next(job)  # its first streamed update: it is in the service
    return job


def alone(service: Service, text: str, **knobs):
    """The fill of `text` with nothing else sharing its batch."""
    engine = service.engine()
    return engine.run(service.request(text, "python"), engine.settings(**{k: v for k, v in knobs.items() if k != "language"}))


def test_two_clients_share_a_batch_each_with_its_own_result_and_passes(server):
    url, service = server
    shared = service.batcher().sizes[2]
    blocker = occupied(url)
    jobs = [user(url).submit(text=t, seed=i, **LONG, stream_passes=True, api_name="/fill") for i, t in enumerate(TEXTS)]
    firsts = [next(job) for job in jobs]  # both are waiting in the service
    assert all(f[1] == {"status": "running"} and f[2]["queue_position"] in (1, 2) for f in firsts)
    blocker.cancel()
    for i, (text, job) in enumerate(zip(TEXTS, jobs)):
        filled, report, stats, _ = job.result(timeout=WAIT)
        expected = alone(service, text, seed=i, **LONG)
        assert report["status"] == "done" and filled == expected.text and stats["passes"] == expected.stats.passes == 64
        live = [u[2] for u in job.outputs() if u[1] == {"status": "running"} and "step" in u[2]]
        assert live and all(u["window"] == 0 for u in live) and live[-1]["step"] <= 64  # its own passes, streamed
    assert service.batcher().sizes[2] == shared + 1  # one backend call served both


def test_cancelling_one_client_leaves_the_other_intact(server):
    url, service = server
    blocker = occupied(url)
    dropped, kept = (user(url).submit(text=TEXTS[1], seed=s, **LONG, stream_passes=True, api_name="/fill") for s in (1, 2))
    next(dropped), next(kept)
    blocker.cancel()
    while "step" not in next(dropped)[2]:  # the shared batch is running
        pass
    dropped.cancel()
    filled, report, stats, _ = kept.result(timeout=WAIT)
    expected = alone(service, TEXTS[1], seed=2, **LONG)
    assert report["status"] == "done" and filled == expected.text and stats["passes"] == expected.stats.passes
    assert service.running == 0  # the cancelled fill left at the end of the shared step, before `kept` ended


def test_a_bad_input_beside_a_good_fill_affects_only_itself(server):
    url, _ = server
    blocker = occupied(url)
    good = user(url).submit(text=TEXTS[0], **LONG, api_name="/fill")
    next(good)
    client = user(url)
    bad_settings = client.predict(text=TEXTS[0], language="python", t_max=0.2, t_min=0.5, api_name="/fill")
    bad_markers = client.predict(text="x = <EDIT>1\n", language="python", api_name="/fill")
    assert bad_settings[1]["status"] == "error" and "t_max" in bad_settings[1]["message"]
    assert bad_markers[1]["status"] == "error" and "never closed" in bad_markers[1]["message"]
    blocker.cancel()
    assert good.result(timeout=WAIT)[1]["status"] == "done"


def test_a_waiting_client_hears_its_place_and_an_estimate(server):
    url, _ = server
    blocker = occupied(url)
    waiting = user(url).submit(text=TEXTS[0], language="python", max_passes=4, api_name="/fill")
    text, report, stats, details = next(waiting)
    assert text == TEXTS[0] and report == {"status": "running"} and details == {}
    assert stats["queue_position"] == 1 and stats["queue_waiting"] == 1 and stats["queue_eta_s"] >= 0 and stats["passes"] == 0
    blocker.cancel()
    assert waiting.result(timeout=WAIT)[1]["status"] == "done"
    assert "queue_position" not in waiting.outputs()[-1][2]  # the result's stats


def test_an_api_client_gets_every_pass_only_when_it_asks(server):
    """Streaming costs the server: a client that does not ask gets progress and its result, one that asks
    (`stream_passes`) gets every pass, in order; both the same fill for the same seed."""
    url, service = server
    knobs = dict(text=TEXTS[1], seed=3, **LONG)  # one window of all 64 passes
    expected = alone(service, TEXTS[1], seed=3, **LONG)
    quiet, asked = user(url).submit(**knobs, api_name="/fill"), user(url).submit(**knobs, stream_passes=True, api_name="/fill")
    for job in (quiet, asked):
        filled, report, stats, _ = job.result(timeout=WAIT)
        assert report["status"] == "done" and filled == expected.text and stats["passes"] == 64
    running = [[u[2] for u in job.outputs() if u[1] == {"status": "running"}] for job in (quiet, asked)]
    assert not any("step" in u for u in running[0])
    assert [u["step"] for u in running[1] if "step" in u] == list(range(1, 65))
