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
# another user's fill with its own sampler knobs: 40 slots in three windows of all 50 passes (no early stop)
BLOCKER = dict(text="x = <FILL:40>\n", language="python", candidates=1, max_passes=50, confidence_threshold=1e-9,
               stability_threshold=50, one_line=False, api_name="/fill")
ESTIMATE = re.compile(r"in the queue, about (\d+\.\d) s to go")


def test_the_queue_estimate_is_within_half_of_the_measured_wait(busy_app, browser):  # noqa: F811
    from gradio_client import Client
    from playwright.sync_api import expect

    for _ in range(2):  # the server measures its step times (the first step's one-time work is then left out)
        assert Client(busy_app, verbose=False).predict(**BLOCKER)[1]["status"] == "done"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(busy_app)
    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    blocker = Client(busy_app, verbose=False).submit(**BLOCKER)
    next(blocker)  # it is being filled: ours, with the page's knobs, cannot join its batch and waits
    page.get_by_role("button", name=re.compile("^Fill")).click()
    status = page.locator("#dgemma-status")
    expect(status).to_contain_text(ESTIMATE, timeout=WAIT)
    told, shown = float(ESTIMATE.search(status.inner_text()).group(1)), time.perf_counter()
    expect(status).not_to_contain_text("in the queue", timeout=WAIT)  # it started
    waited = time.perf_counter() - shown
    assert abs(told - waited) <= 0.5 * waited, f"estimate {told} s, waited {waited:.1f} s"
    expect(status).to_contain_text("Filled in", timeout=WAIT)
    blocker.result(timeout=WAIT / 1000)
    page.close()
