"""What the browser tests share: Debian's Chromium, one in-process server per test module, and small page helpers.

A test module does `from browser_support import *`: the fixtures come with it, and so does `pytestmark` (slow, and
skipped without /usr/bin/chromium). The server runs the embedded default model when it has been trained into
models/, else the tiny test model.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dgemma_app.model import DEFAULT_MODEL_DIR, load_model
from dgemma_app.ui import Service, build_demo, launch

__all__ = ["CHROMIUM", "FLAGS", "WAIT", "pytestmark", "shots", "app", "browser", "page", "replace_code", "fill_and_wait", "set_pass", "knob", "choose_language"]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
WAIT = 120_000  # ms; two busy cores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def shots(request, tmp_path_factory) -> Path:
    """Where screenshots go: `--screenshots DIR` (see conftest), else a temporary folder."""
    folder = request.config.getoption("--screenshots") or tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def app(tiny_model_dir):
    folder = DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "config.json").is_file() else tiny_model_dir
    service = Service(lambda: load_model(folder, device_map="cpu"), str(folder))
    demo = build_demo(service)
    yield launch(demo, port=None, block=False), service
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(app, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app[0])
    yield page
    page.close()


def replace_code(page, text: str) -> None:
    """Select everything in the editor and type `text` over it (the editor indents new lines itself)."""
    from playwright.sync_api import expect

    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)  # model loaded, defaults shown
    page.locator("#dgemma-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def fill_and_wait(page, done: str = "Filled in") -> None:
    """Press Fill and wait until the status says `done` and Stop is disabled again."""
    from playwright.sync_api import expect

    page.get_by_role("button", name=re.compile("^Fill")).click()
    expect(page.locator("#dgemma-status")).to_contain_text(done, timeout=WAIT)
    expect(page.get_by_role("button", name="Stop")).to_be_disabled(timeout=WAIT)


def set_pass(page, value: int | str, label: str = "Pass") -> None:
    """Type a value into a slider's number box and press Enter."""
    box = page.get_by_label(f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")


def knob(page, label: str, value) -> None:
    """Set a setting's number box (the Settings accordion opens if it is closed). A box that has just mounted can
    still take its default from the server after it was typed into (seen once in CI), so the value is checked and
    typed once more if it was overwritten."""
    from playwright.sync_api import expect

    box = page.get_by_label(f"number input for {label}").or_(page.get_by_label(label, exact=True)).first
    if not box.is_visible():
        page.get_by_text("Settings (defaults from").click()
        expect(box).to_be_visible(timeout=WAIT)
    for attempt in range(2):
        box.fill(str(value))
        box.press("Enter")
        try:
            expect(box).to_have_value(str(value), timeout=3000)
            return
        except AssertionError:
            if attempt:
                raise


def choose_language(page, name: str) -> None:
    """Pick `name` in the Language menu (typed into its filter, then Enter)."""
    from playwright.sync_api import expect

    box = page.locator("#dgemma-language input")
    box.click()
    box.fill(name)
    box.press("Enter")
    expect(box).to_have_value(name)
