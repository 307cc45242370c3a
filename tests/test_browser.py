"""The page in a real Chromium (Debian's /usr/bin/chromium), driven by Playwright.

Type code, insert a gap with Ctrl+I, fill with Ctrl+Enter, see the highlighted fill and the parse
badge, step the pass slider back to the starting canvas, and trigger one bad input. Uses the
embedded default model when it has been trained into models/, else the tiny test model. Screenshots go
to a temporary folder; `python -m bench.screenshots` writes them to docs/screenshots/ on purpose.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from browser_support import *  # noqa: F403 (fixtures, pytestmark)
from browser_support import WAIT, replace_code

from dgemma_app.model import DEFAULT_MODEL_DIR, load_model
from dgemma_app.ui import Service, build_demo, launch


def test_fill_slider_and_bad_input(page, shots):
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Fill gaps in code with a diffusion model")).to_be_visible()
    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)  # model loaded, defaults shown

    editor = page.locator("#dgemma-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("def add(a, b):\n")  # the editor indents the next line itself
    page.keyboard.type("return ")
    page.keyboard.press("Control+I")
    expect(editor).to_contain_text("return <FILL>")

    page.get_by_text("Settings (defaults from").click()
    passes = page.get_by_label("number input for Max passes")
    passes.fill("12")
    passes.press("Enter")
    page.get_by_text("Settings (defaults from").click()  # fold the settings away again
    editor.click()  # the shortcuts act in the editor only
    page.keyboard.press("Control+Enter")

    status = page.locator("#dgemma-status")
    expect(status).to_contain_text("Filled in", timeout=WAIT)
    expect(page.locator("#dgemma-result .dg-fill").first).to_be_visible()
    expect(page.locator("#dgemma-badge .dg-badge")).to_contain_text(re.compile("Parses|parse error"))
    expect(page.locator("#dgemma-stats")).to_contain_text("tokens/pass")

    canvas = page.locator("#dgemma-canvas pre.dg-canvas")
    expect(canvas.locator(".dg-tok").first).to_have_attribute("title", re.compile("probability .* entropy"))
    final = canvas.inner_html()
    assert canvas.get_attribute("data-step") != "0"
    slider = page.get_by_label("number input for Pass")
    slider.fill("0")
    slider.press("Enter")
    expect(canvas).to_have_attribute("data-step", "0")
    expect(page.locator("#dgemma-canvas .dg-caption")).to_contain_text("pass 0")
    assert canvas.inner_html() != final
    page.screenshot(path=str(shots / "fill-and-slider.png"), full_page=True)

    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("print('no gap here')")
    page.get_by_role("button", name=re.compile("^Fill")).click()
    expect(page.get_by_role("alert")).to_contain_text("No gaps found")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()  # nothing runs after a refused fill
    expect(editor).to_have_text("print('no gap here')")
    expect(page.locator("#dgemma-notice")).to_contain_text("the result before it")  # the previous result stays, marked
    expect(page.locator("#dgemma-result .dg-fill").first).to_be_visible()
    expect(canvas).to_have_attribute("data-step", "0")
    page.screenshot(path=str(shots / "bad-input.png"))

    page.get_by_role("button", name="Two gaps at once").click()  # examples are one click away
    expect(editor).to_contain_text("func cube")
    page.get_by_role("button", name=re.compile("^Fill")).click()
    expect(status).to_contain_text("Filled in", timeout=WAIT)
    fill_parts = page.locator("#dgemma-result .dg-fill")  # one or more runs per fill (split at lines and errors)
    expect(fill_parts.and_(page.locator("[title^='fill 1']")).first).to_be_visible()
    expect(fill_parts.and_(page.locator("[title^='fill 2']")).first).to_be_visible()
    expect(fill_parts.and_(page.locator("[title^='fill 3']"))).to_have_count(0)
    caption = page.locator("#dgemma-canvas .dg-caption")
    last = caption.inner_text()
    slider.fill(str(int(slider.input_value()) // 2))
    slider.press("Enter")
    expect(caption).not_to_have_text(last)
    page.screenshot(path=str(shots / "two-gaps.png"), full_page=True)


def test_closing_the_tab_mid_fill_stops_the_model(app, page, shots):
    from playwright.sync_api import expect

    _, service = app
    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    page.locator("#dgemma-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.type("import os\nx = [<FILL:2000>]")  # over a hundred windows, mid-line (no line break ends it): far longer than this test waits
    expect(page.locator("#dgemma-canvas")).not_to_be_in_viewport()  # below the fold before the fill
    page.keyboard.press("Control+Enter")
    expect(page.locator("#dgemma-canvas .dg-caption")).to_contain_text("Live", timeout=WAIT)
    expect(page.locator("#dgemma-canvas pre.dg-canvas")).to_be_in_viewport()  # scrolled into view by itself
    assert service.running == 1
    page.screenshot(path=str(shots / "live.png"), full_page=True)
    page.close()
    deadline = time.monotonic() + 60
    while service.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.running == 0


def test_gap_markers_at_the_caret_over_a_selection_and_around_it(page, tmp_path):
    from playwright.sync_api import expect

    editor = page.locator("#dgemma-editor .cm-content")
    lines = page.locator("#dgemma-editor .cm-line")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("total = a + b\nprint(total)")
    expect(lines).to_have_text(["total = a + b", "print(total)"])

    page.keyboard.press("Control+Home")
    for _ in range(len("total = ")):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Control+I")  # a caret in the middle of a line
    expect(lines).to_have_text(["total = <FILL>a + b", "print(total)"])

    page.keyboard.press("Control+End")
    page.keyboard.press("Home")
    for _ in range(len("print")):
        page.keyboard.press("Shift+ArrowRight")
    page.get_by_role("button", name=re.compile("^Insert gap")).click()  # a selection becomes the gap
    expect(lines).to_have_text(["total = <FILL>a + b", "<FILL>(total)"])

    page.keyboard.press("Control+Home")
    page.keyboard.press("End")
    for _ in range(len("a + b")):
        page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Control+E")
    expect(lines).to_have_text(["total = <FILL><EDIT>a + b</EDIT>", "<FILL>(total)"])
    page.keyboard.type("a - b")  # the old code stays selected inside the tags
    expect(lines.first).to_have_text("total = <FILL><EDIT>a - b</EDIT>")

    page.keyboard.press("Control+End")
    page.get_by_role("button", name=re.compile("^Wrap in EDIT")).click()  # a bare caret gets an empty pair
    page.keyboard.type("old")
    expect(lines).to_have_text(["total = <FILL><EDIT>a - b</EDIT>", "<FILL>(total)<EDIT>old</EDIT>"])
    page.locator("#dgemma-editor").screenshot(path=str(tmp_path / "markers.png"))


def test_esc_then_tab_leaves_the_editor(page):
    from playwright.sync_api import expect

    expect(page.get_by_text("Esc, then Tab")).to_be_visible()
    editor = page.locator("#dgemma-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("x")
    page.keyboard.press("Tab")  # indents: focus stays
    expect(editor).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    expect(editor).not_to_be_focused()


def test_badge_is_false_for_an_empty_python_block_body(page):
    """tree-sitter accepts a comment-only body; CPython, and so the badge, do not. The gap sits in a
    comment above the function, so no fill can give the body a statement."""
    from playwright.sync_api import expect

    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    page.locator("#dgemma-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("# note: <FILL:1>\ndef f():\n# todo")  # the editor indents the body
    page.keyboard.press("Control+Enter")
    expect(page.locator("#dgemma-status")).to_contain_text("Filled in", timeout=WAIT)
    expect(page.locator("#dgemma-result")).to_contain_text("# todo")
    badge = page.locator("#dgemma-badge .dg-badge")
    expect(badge).to_contain_text("parse error")
    expect(badge).not_to_contain_text("Parses")
    expect(page.locator("#dgemma-issues")).to_contain_text("IndentationError")


def test_teaching_mode_settles_gradually_and_play_moves_the_slider(app, page, shots):
    """The teaching example turns teaching mode on; its fill takes at least 6 passes, some of them with part of
    the gap accepted and part still noise, and Play moves the slider by itself."""
    from playwright.sync_api import expect

    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    if app[1].source == str(DEFAULT_MODEL_DIR):  # the embedded toy model says what to expect of it
        expect(page.locator("#dgemma-model")).to_contain_text("embedded toy model")
        expect(page.locator("#dgemma-model")).to_contain_text("hf download google/diffusiongemma-26B-A4B-it")  # the README's steps
        expect(page.get_by_role("link", name="README")).to_have_attribute("href", re.compile(r"README\.md$"))
    page.get_by_role("button", name="Teaching: watch a gap settle").click()
    expect(page.get_by_label("Teaching mode")).to_be_checked()
    expect(page.locator("#dgemma-teaching-note")).to_contain_text("Entropy bound 0.3")
    page.get_by_role("button", name=re.compile("^Fill")).click()
    expect(page.locator("#dgemma-status")).to_contain_text("Filled in", timeout=WAIT)

    slider = page.get_by_label("number input for Pass")
    last = int(slider.input_value())
    assert last >= 6
    canvas = page.locator("#dgemma-canvas pre.dg-canvas")
    partial = 0
    for index in range(1, last):
        slider.fill(str(index))
        slider.press("Enter")
        expect(canvas).to_have_attribute("data-step", str(index))
        partial += canvas.locator(".dg-accepted").count() > 0 and canvas.locator(".dg-noise").count() > 0
        if index == last // 2:
            page.screenshot(path=str(shots / "teaching-mid-fill.png"), full_page=True)
    assert partial >= 2

    slider.fill("0")
    slider.press("Enter")
    expect(canvas).to_have_attribute("data-step", "0")
    assert "\ufffd" not in canvas.inner_text()  # byte-level noise shows as characters or ⟨xx⟩
    page.get_by_role("button", name="▶ Play").click()
    expect(canvas).to_have_attribute("data-step", "2", timeout=WAIT)  # moved on by itself
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="▶ Play")).to_be_visible()
    slider.fill("1")  # a known pass: a tick sent just before the pause may still land after it
    slider.press("Enter")
    expect(canvas).to_have_attribute("data-step", "1")
    page.get_by_role("button", name="Step forward ▶").click()
    expect(slider).to_have_value("2")
    page.get_by_role("button", name="◀ Step back").click()
    expect(slider).to_have_value("1")


def test_side_by_side_shows_diffusion_and_left_to_right_on_one_slider(page, shots):
    from playwright.sync_api import expect

    replace_code(page, "const values = [<FILL:40>];\n")  # left to right: 40 passes, long enough to watch
    page.get_by_text("Settings (defaults from").click()
    page.get_by_label("Exact length").check()
    page.get_by_role("button", name="Compare: fill the gap both ways").click()
    view, status = page.locator("#dgemma-compare"), page.locator("#dgemma-compare-status")
    expect(status).to_contain_text("Comparing", timeout=WAIT)  # a status line while both fills run
    expect(view.locator(".dg-caption").first).to_contain_text("Live", timeout=WAIT)  # the passes stream as they come
    expect(status).to_contain_text("Compared", timeout=WAIT)
    expect(view.locator(".dg-compare-way")).to_have_count(2, timeout=WAIT)
    expect(view.locator(".dg-caption", has_text="Live")).to_have_count(0)
    expect(view.locator("h4").first).to_contain_text(re.compile(r"Diffusion: \d+ pass"))
    expect(view.locator("h4").last).to_contain_text("Left to right: 40 passes")
    slider = page.get_by_label("number input for Both fills at pass")
    slider.fill("1")
    slider.press("Enter")
    canvases = view.locator("pre.dg-canvas")
    expect(canvases).to_have_count(2)
    expect(canvases.first).to_have_attribute("data-step", "1")
    expect(canvases.last).to_have_attribute("data-step", "1")
    view.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "side-by-side.png"), full_page=True)


# The WCAG contrast ratio of an element's text against the first opaque background behind it, from computed styles
# (the text's alpha and opacity blended over that background).
CONTRAST = """(el) => {
  const rgba = (s) => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                       return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  let bg = [255, 255, 255, 1];
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const c = rgba(getComputedStyle(node).backgroundColor);
    if (c[3] > 0) { bg = c; break; }
  }
  let alpha = 1;
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) alpha *= parseFloat(getComputedStyle(node).opacity);
  const fg = rgba(getComputedStyle(el).color);
  const t = fg[3] * alpha;
  const seen = [0, 1, 2].map((i) => fg[i] * t + bg[i] * (1 - t));
  const [hi, lo] = [lum(seen), lum(bg)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}"""


def test_dark_mode_plot_and_error_table_follow_the_theme(app, browser, shots):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    try:
        page.goto(app[0] + "?__theme=dark")
        expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
        choose_language(page, "python")  # auto refuses a text this broken: no grammar clearly fits it
        page.locator("#dgemma-editor .cm-content").click()
        page.keyboard.press("Control+A")
        page.keyboard.type("def f(:\n    return <FILL:4>\n")  # an error already in the input fills the table
        page.keyboard.press("Control+Enter")
        expect(page.locator("#dgemma-status")).to_contain_text("Filled in", timeout=WAIT)
        plot = page.locator("svg.dg-plot")
        expect(plot).to_be_visible()
        assert plot.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(17, 24, 39)"  # the page's dark, not white
        for cell in page.locator(".dg-issues td").all():  # light text on the dark page, in a fill or not
            red, green, blue = map(int, re.findall(r"\d+", cell.evaluate("e => getComputedStyle(e).color"))[:3])
            assert red + green + blue > 450
        texts = page.locator("#dgemma-status .dg-msg, #dgemma-status .dg-icon, #dgemma-badge .dg-badge, #dgemma-badge .dg-badge *, "
                             "#dgemma-badge .dg-covers, #dgemma-detected .dg-detected")
        assert texts.count() >= 5
        for element in texts.all():  # WCAG AA for normal text
            assert element.evaluate(CONTRAST) >= 4.5, element.evaluate("e => e.outerHTML")
        page.screenshot(path=str(shots / "dark-mode.png"), full_page=True)
    finally:
        page.close()


@pytest.fixture(scope="module")
def busy_app(tiny_model_dir):
    """A server whose users wait in the service (where they see their place), not in Gradio's queue."""
    service = Service(lambda: load_model(tiny_model_dir, device_map="cpu"), "tiny test model", max_batch=4, queue_size=4)
    demo = build_demo(service)
    yield launch(demo, port=None, concurrency=service.capacity, block=False)
    demo.close()


def test_a_waiting_user_sees_its_place_in_the_queue(busy_app, browser, shots):
    from gradio_client import Client
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(busy_app)
    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    # another user's long fill with other sampler knobs: ours cannot join its batch and waits
    blocker = Client(busy_app, verbose=False).submit(
        text="x = <FILL:2000>\n", language="python", candidates=1, max_passes=50, confidence_threshold=1e-9,
        stability_threshold=50, one_line=False, api_name="/fill",  # no line break ends it early
    )
    next(blocker)  # it is being filled
    page.get_by_role("button", name=re.compile("^Fill")).click()
    status = page.locator("#dgemma-status")
    expect(status).to_contain_text("1 of 1 in the queue", timeout=WAIT)
    expect(status).to_contain_text(re.compile(r"about \d+\.\d s to go"))
    page.screenshot(path=str(shots / "queue.png"))
    blocker.cancel()
    expect(status).to_contain_text("Filled in", timeout=WAIT)
    page.close()
