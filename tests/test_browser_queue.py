"""The queue estimate a waiting user reads on the page, against the wait it then has (issue 20): the real server,
Debian's Chromium through Playwright, the tiny test model. Reuses tests/test_browser.py's fixtures (imported, so
that file stays as it is)."""
from __future__ import annotations

import re
import time

import pytest

from tests.test_browser import CHROMIUM, WAIT, browser, busy_app  # noqa: F401 - pytest fixtures, used by name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]
# another user's fill with its own sampler knobs: 80 slots in five windows of all 30 passes (no early stop)
BLOCKER = dict(text="x = <FILL:80>\n", language="python", candidates=1, max_passes=30, confidence_threshold=1e-9,
               stability_threshold=30, one_line=False, stream_passes=True, api_name="/fill")
ESTIMATE = re.compile(r"in the queue, about (\d+\.\d) s to go")


def queued_fill(page, client) -> tuple[float, float]:
    """Another user's fill runs; the page's fill waits behind it: (the estimate the page shows first, the seconds
    from then until the fill starts)."""
    from playwright.sync_api import expect

    blocker = client.submit(**BLOCKER)
    while "step" not in next(blocker)[2]:  # until its first pass: it is being filled, four more windows to go
        pass
    # ours, with the page's knobs, cannot join its batch: it waits, long enough that the page's own start-up
    # (its first pass shown) is a small part of the wait measured
    page.get_by_role("button", name=re.compile("^Fill")).click()
    status = page.locator("#dgemma-status")
    expect(status).to_contain_text(ESTIMATE, timeout=WAIT)
    told, shown = float(ESTIMATE.search(status.inner_text()).group(1)), time.perf_counter()
    expect(status).not_to_contain_text("in the queue", timeout=WAIT)  # it started
    waited = time.perf_counter() - shown
    expect(status).to_contain_text("Filled in", timeout=WAIT)
    assert blocker.result(timeout=WAIT / 1000)[1]["status"] == "done"
    return told, waited


def test_the_queue_estimate_is_within_half_of_the_measured_wait(busy_app, browser):  # noqa: F811
    """The first round lets the server measure its steps as they run here (the page open and waiting, the
    blocker streaming); the second is judged."""
    from gradio_client import Client
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(busy_app)
    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    client = Client(busy_app, verbose=False)
    queued_fill(page, client)
    told, waited = queued_fill(page, client)
    assert abs(told - waited) <= 0.5 * waited, f"estimate {told} s, waited {waited:.1f} s"
    page.close()
