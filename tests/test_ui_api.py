"""The app's named API endpoints, called through gradio_client against the real server, in process.

The server runs the package's tiny random-weight model (dgemma_app.tiny): its fills are junk, but every pass, the
streaming, the parse check and the error paths are real.
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.request

import pytest
from gradio_client import Client
from gradio_client.utils import QueueError, Status

from dgemma_app.cli import add_serve_args
from dgemma_app.gaps import Limits
from dgemma_app.model import load_model
from dgemma_app.syntax import ParseIssue, ParseReport
from dgemma_app.ui import Service, build_demo, launch, render, serve
from dgemma_app.ui.examples import EXAMPLES

CODE = "def add(a, b):\n    return <FILL:24>\n"
FAST = {"max_passes": 6, "seed": 1}


@pytest.fixture(scope="module")
def server(tiny_loaded):
    service = Service(lambda: tiny_loaded, "tiny test model", Limits(max_bytes=4096))
    demo = build_demo(service)
    url = launch(demo, port=None, concurrency=2, queue_size=16, block=False)
    yield Client(url, verbose=False), service
    demo.close()


@pytest.mark.slow
def test_fill_streams_passes_before_the_result(server):
    client, _ = server
    # 24 slots on a 16-token canvas: two windows, so the fill outlasts the 0.1 s redraw throttle; one_line off (a
    # switch turned off reaches the engine), or a line break could end the gap in the first window
    job = client.submit(text=CODE, language="python", max_passes=20, confidence_threshold=1e-9, candidates=1, one_line=False,
                        stream_passes=True, api_name="/fill")
    text, report, stats, details = job.result(timeout=120)
    updates = job.outputs()
    running = [u for u in updates if u[1] == {"status": "running"}]
    assert running and updates.index(running[0]) < len(updates) - 1
    assert all(u[0] == CODE for u in running)  # the input is untouched while the model runs
    assert {"passes", "seconds", "window", "step", "accepted", "mean_entropy", "draft"} <= set(running[-1][2])
    assert report["status"] == "done" and report["language"] == "python" and report["checked"]
    assert "<FILL" not in text and text.startswith("def add(a, b):\n    return ")
    assert stats["windows"] == 2 and stats["passes"] >= 2 and stats["tokens_per_second"] >= 0
    assert details["text"] == text and len(details["candidates"]) == 1 and "trace" not in details


@pytest.mark.slow
def test_fill_with_trace_and_candidates(server):
    client, _ = server
    _, report, _, details = client.predict(text=CODE, language="auto", candidates=2, with_trace=True, **FAST, api_name="/fill")
    assert report["status"] == "done" and report["language"] == "python"
    assert len(details["candidates"]) == 2 and all(c["rank_reason"] for c in details["candidates"])
    trace = details["trace"]
    assert trace[0]["step"] == 0 and trace[0]["window"] == 0
    assert {"pieces", "state", "changed", "confidence", "entropy"} <= set(trace[0])


@pytest.mark.slow
def test_exact_length_fills_every_slot_of_a_sized_gap(server):
    client, _ = server
    _, report, stats, details = client.predict(
        text="x = <FILL:6>\n", language="python", candidates=1, left_to_right=True, exact_length=True, **FAST, api_name="/fill"
    )
    assert report["status"] == "done" and details["candidates"][0]["slots"] == [6]
    assert stats["tokens"] == 6 and stats["passes"] == 6  # one token per pass, and the filler cannot end it early


@pytest.mark.parametrize(
    ("text", "language", "knobs", "expected"),
    [
        ("", "python", {}, "empty"),
        ("def f():\n    pass\n", "python", {}, "No gaps found"),
        ("x = <EDIT>1\n", "python", {}, "never closed"),
        ("x = <FILL>\n" + "y = 1\n" * 1000, "python", {}, "over the limit"),
        ("x = <FILL>\n", "cobol", {}, "Unknown language"),
        ("x = <FILL>\n", "python", {"t_max": 0.2, "t_min": 0.5}, "t_max"),
        ("x1 <FILL> y2", "auto", {}, "pick one in the Language menu"),
        (42, "python", {}, "text must be a string; it was int 42"),
        ("x = <FILL>\n", "python", {"seed": -1}, "seed is -1"),
    ],
)
@pytest.mark.slow
def test_bad_input_gives_a_message_and_the_text_back(server, text, language, knobs, expected):
    client, _ = server
    out_text, report, stats, details = client.predict(text=text, language=language, **knobs, api_name="/fill")
    assert out_text == text
    assert report["status"] == "error" and expected in report["message"]
    assert stats == {} and details == {}


@pytest.mark.slow
def test_cancelled_fill_stops_the_model_and_the_next_is_served(server):
    client, service = server
    # 2000 slots: over a hundred windows, far longer than the test waits
    job = client.submit(text="x = <FILL:2000>\n", language="python", max_passes=64, confidence_threshold=1e-9, api_name="/fill")
    deadline = time.monotonic() + 60
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.outputs() and service.running == 1
    job.cancel()
    while service.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.running == 0
    _, report, _, _ = client.predict(text=CODE, language="python", **FAST, api_name="/fill")
    assert report["status"] == "done"


@pytest.mark.slow
def test_defaults_come_from_the_model(server):
    client, _ = server
    out = client.predict(api_name="/defaults")
    assert out["status"] == "ok" and "canvas 16 tokens" in out["model"]
    assert out["settings"]["max_passes"] >= 1 and 0 < out["settings"]["entropy_bound"]


def test_serve_fails_fast_on_a_missing_model(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_serve_args(parser)
    assert serve(parser.parse_args(["--model", str(tmp_path / "nowhere"), "--device-map", "cpu"])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err


def test_filled_code_marks_the_fill_that_breaks_parsing():
    text = "x = (1 +\ny = 2\n"
    issue = ParseIssue(1, 5, 1, 9, "ERROR", "(1 +", True)
    report = ParseReport("python", checked=True, parses=False, issues=[issue], errors_before=0, new_errors=True)
    html = render.filled_code(text, [(4, 8), (13, 14)], report)
    assert html.count("dg-fill-bad") == 1 and html.count('class="dg-fill"') == 1
    assert '<span class="dg-ln">2</span>' in html and "dg-err" in html
    assert "new parse error" in render.badge(report)


@pytest.mark.slow
def test_mcp_serves_the_same_endpoints_as_tools(tiny_loaded):
    demo = build_demo(Service(lambda: tiny_loaded, "tiny test model"))
    url = launch(demo, port=None, mcp=True, block=False)
    try:
        with urllib.request.urlopen(url + "gradio_api/mcp/schema", timeout=30) as response:
            tools = {tool["name"]: tool for tool in json.load(response)}
    finally:
        demo.close()
    assert {"api_fill", "api_defaults"} <= set(tools)
    assert {"text", "language", "max_passes"} <= set(tools["api_fill"]["inputSchema"]["properties"])


@pytest.mark.slow
def test_a_full_queue_tells_the_client_it_is_busy(tiny_loaded):
    service = Service(lambda: tiny_loaded, "tiny test model")
    demo = build_demo(service)
    client = Client(launch(demo, port=None, concurrency=1, queue_size=1, block=False), verbose=False)
    long = dict(text="x = <FILL:2000>\n", language="python", max_passes=64, confidence_threshold=1e-9, api_name="/fill")
    try:
        running = client.submit(**long)
        while not running.outputs():  # the first is being served
            time.sleep(0.05)
        waiting = client.submit(**long)
        while waiting.status().code != Status.IN_QUEUE:  # the second waits in the queue
            time.sleep(0.05)
        with pytest.raises(QueueError, match="Queue is full"):
            client.submit(**long).result(timeout=60)
        waiting.cancel()
        running.cancel()
    finally:
        demo.close()


@pytest.mark.slow
@pytest.mark.parametrize(("label", "language", "text"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_fills(server, label, language, text):
    client, _ = server
    _, report, _, details = client.predict(text=text, language=language, max_passes=2, api_name="/fill")
    assert report["status"] == "done", report
    assert report["checked"] == (language != "text") and details["language"] == language


@pytest.mark.slow
def test_a_model_that_cannot_load_is_a_message(tmp_path):
    missing = tmp_path / "no-model"
    demo = build_demo(Service(lambda: load_model(missing, device_map="cpu"), str(missing)))
    client = Client(launch(demo, port=None, block=False), verbose=False)
    try:
        text, report, _, _ = client.predict(text=CODE, language="python", api_name="/fill")
        assert text == CODE and report["status"] == "error" and "does not exist" in report["message"]
        assert client.predict(api_name="/defaults")["status"] == "error"
    finally:
        demo.close()


def test_a_model_default_outside_a_slider_widens_its_range():
    import gradio as gr

    from dgemma_app.ui.page import knob_default

    widened = knob_default(gr.Slider(0.01, 32, value=0.1), 100.0)
    assert widened["value"] == 100.0 and widened["maximum"] == 100.0 and widened["minimum"] == 0.01
    inside = knob_default(gr.Slider(1, 256, value=48), 16)
    assert inside["value"] == 16 and inside["maximum"] == 256
    assert knob_default(gr.Number(0.005), 0.05) == 0.05
