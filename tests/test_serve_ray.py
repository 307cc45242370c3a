"""The fill service as Ray Serve replicas, on a real one-node Ray cluster that listens on loopback only.

Two CPU replicas of the tiny random-weight model: fills stream pass by pass through them (directly and through
the Gradio API), Stop reaches the replica, and a replica killed while fills are running costs no request.
Ray is imported only inside the fixture, after the environment that keeps it on loopback is set.
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import pytest
from gradio_client import Client

from dgemma_app.cli import add_serve_args
from dgemma_app.results import FillResult
from dgemma_app.serve_ray import APP, DEPLOYMENT, RayFillSource
from dgemma_app.settings import SettingsError
from dgemma_app.ui import build_demo, launch
from dgemma_app.ui.service import Progress
from dgemma_app.ui.source import FillUnavailable

pytestmark = pytest.mark.slow

CODE = "x = <FILL:48>\n"  # three windows of the 16-token canvas
ALL_PASSES = {"stability_threshold": 64, "confidence_threshold": 1e-9, "candidates": 1}  # no early stop
WHOLE = {"one_line": False, **ALL_PASSES}  # no line break ends the gap early: every window runs
LONG = {"max_passes": 40, **WHOLE}  # about 120 passes: a second or more
LONGER = {"max_passes": 160, **WHOLE}  # about 480 passes: several seconds
ENDLESS = {"max_passes": 1000, **WHOLE}  # minutes, unless stopped
QUIET = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def source(tiny_model_dir, tmp_path_factory):
    """Two replicas deployed on a Ray cluster started in this process (its files under tmp_path); always shut down."""
    env = {**QUIET, "RAY_TMPDIR": str(tmp_path_factory.mktemp("ray"))}  # loopback only: no other node, no token needed
    saved = {name: os.environ.get(name) for name in [*env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"]}
    os.environ.update(env)
    parser = argparse.ArgumentParser()
    add_serve_args(parser)
    args = parser.parse_args(["--model", str(tiny_model_dir), "--device-map", "cpu", "--threads", "1", "--ray-replicas", "2", "--concurrency", "2"])
    source = RayFillSource(args)
    try:
        assert "2 Ray Serve replica(s)" in source.describe()  # starts Ray and deploys
        yield source
    finally:
        import ray

        ray.shutdown()  # the cluster started in this process: Serve, replicas and all
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def fill(source: RayFillSource, settings: dict, into: list) -> None:
    """Run one fill, appending every update (or the exception that ended it) to `into`."""
    try:
        into.extend(source.run(source.request(CODE, "python"), settings))
    except Exception as err:  # the test looks at it
        into.append(err)


def replica_load(source: RayFillSource, calls: int = 24) -> dict[str, int]:
    """Fills running per replica, from enough calls that the router reaches every replica (each takes two
    requests at once, --concurrency 2, so a replica running one fill still answers; one running two answers
    only after a fill ends)."""
    handle = source.handle()
    return dict(handle.load.remote().result() for _ in range(calls))


def test_fills_stream_pass_by_pass_from_two_replicas(source):
    import ray

    assert source.ready and ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    outcomes: list[list] = [[], []]
    threads = [threading.Thread(target=fill, args=(source, LONG, out)) for out in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for updates in outcomes:
        *progress, result = updates
        assert isinstance(result, FillResult) and result.text.startswith("x = ") and result.stats.windows == 3
        assert progress and all(isinstance(u, Progress) for u in progress)  # passes arrived before the result
        assert progress[-1].passes > 0 and progress[-1].latest is not None
    assert len(replica_load(source)) == 2
    with pytest.raises(SettingsError, match="^max passes is 0; it must be between 1 and") as err:
        list(source.run(source.request(CODE, "python"), {"max_passes": 0}))
    assert "\n" not in str(err.value)  # the replica's own message, not Ray's traceback


def test_stop_reaches_the_replica(source):
    updates = source.run(source.request(CODE, "python"), ENDLESS)
    first = next(u for u in updates if isinstance(u, Progress) and u.passes)
    assert first.passes < 1000 and sum(replica_load(source).values()) == 1
    updates.close()  # what Gradio does on Stop or a closed tab
    deadline = time.monotonic() + 15
    while (busy := sum(replica_load(source).values())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert busy == 0


def test_a_replica_killed_mid_fill_loses_no_request(source):
    import ray
    from ray import serve

    # 8 fills, 4 slots (2 replicas x --concurrency 2): once 3 fills have run a pass, both replicas are filling
    # (a load probe here would queue behind the 4 waiting fills and answer only once they end). The fills run
    # about 480 passes, seconds: the first round is still running at the kill.
    outcomes: list[list] = [[] for _ in range(8)]
    threads = [threading.Thread(target=fill, args=(source, LONGER, out)) for out in outcomes]
    for t in threads:
        t.start()

    def filling() -> int:
        return sum(any(isinstance(u, Progress) and u.passes for u in list(out)) for out in outcomes)

    deadline = time.monotonic() + 60
    while filling() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert filling() >= 3, f"only {filling()} fills reached a replica"
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(f"SERVE_REPLICA::{APP}#")]
    assert len(replicas) == 2
    victim = replicas[0]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads)  # no client hangs
    for updates in outcomes:  # each gets its result, or one clear sentence
        assert isinstance(updates[-1], (FillResult, FillUnavailable)), updates[-1]
    assert all(isinstance(out[-1], FillResult) for out in outcomes)  # with one replica left, the retry succeeds
    counts = [[u.passes for u in out if isinstance(u, Progress)] for out in outcomes]
    assert any(any(b < a for a, b in zip(c, c[1:])) for c in counts)  # a fill started over on the other replica
    killed, started = victim["name"].rpartition("#")[2], time.monotonic()
    deadline = started + 120
    while time.monotonic() < deadline:  # until the router knows two live replicas, neither of them the killed one
        status = serve.status().applications[APP].deployments[DEPLOYMENT]
        ids = set(replica_load(source, calls=8))
        if status.status == "HEALTHY" and status.replica_states == {"RUNNING": 2} and len(ids) == 2 and killed not in ids:
            break
        time.sleep(0.5)
    assert status.replica_states == {"RUNNING": 2} and len(ids) == 2 and killed not in ids  # Serve replaced it
    restarted = sum(any(b < a for a, b in zip(c, c[1:])) for c in counts)
    print(f"replica {killed} killed: {restarted} of {len(counts)} fills started over; replaced {time.monotonic() - started:.1f} s after they ended")
    after: list = []
    fill(source, LONG, after)
    assert isinstance(after[-1], FillResult)


def test_the_page_api_streams_through_the_replicas(source):
    demo = build_demo(source)
    url = launch(demo, port=None, concurrency=2, queue_size=8, block=False)
    try:
        job = Client(url, verbose=False).submit(text=CODE, language="python", **LONG, stream_passes=True, api_name="/fill")
        text, report, stats, _ = job.result(timeout=120)
        running = [u for u in job.outputs() if u[1] == {"status": "running"}]
        assert running and running[-1][2]["passes"] > 0
        assert report["status"] == "done" and text.startswith("x = ") and stats["windows"] == 3
    finally:
        demo.close()


def test_a_replica_that_cannot_load_is_reported_in_its_own_words():
    """What `deploy` reads from Serve's status when the replicas' constructors failed (the shape Ray 2.60 gives)."""
    from types import SimpleNamespace

    from dgemma_app.serve_ray import _start_failure

    trace = "Traceback (most recent call last):\n  ...\ndgemma_app.model.ModelLoadError: Model folder /x does not exist; pass an existing folder.\n"
    status = SimpleNamespace(applications={APP: SimpleNamespace(deployments={DEPLOYMENT: SimpleNamespace(message=trace)})})
    assert _start_failure(status, "Deploying application dgemma failed") == "Model folder /x does not exist; pass an existing folder."
    empty = SimpleNamespace(applications={})
    assert _start_failure(empty, "Deploying failed\nmore") == "The Ray Serve replicas could not start: Deploying failed"
