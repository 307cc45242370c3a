"""Small things a person feels (issue 20): shortcuts only in the editor, no nested EDITs, prose wrapping as it is typed,
the detected language with a one-click change, controls with names, and canvases without U+FFFD or raw control
characters, in a real Chromium.

Two tests here check auto-detection itself (plain Python without def/class/import; prose that mentions "function"):
they pass once `syntax.detect_language` is behind `resolve_language`.
"""
from __future__ import annotations

import re
import unicodedata

from browser_support import *  # noqa: F403 (fixtures, pytestmark)
from browser_support import WAIT, choose_language, fill_and_wait, knob, replace_code, set_pass

UNICODE_HEAVY = 'greeting = "Grüße, naïve café — “quotes” → λ ✓ 日本語"\nemoji = "<FILL:6>"  # 😀 ünïcödé\n'


def test_shortcuts_act_only_in_the_editor_and_edits_do_not_nest(page):
    from playwright.sync_api import expect

    replace_code(page, "total = a + b")
    lines = page.locator("#dgemma-editor .cm-line")
    page.get_by_text("Settings (defaults from").click()
    seed = page.get_by_label("Seed", exact=True)
    seed.click()
    for key in ("Control+I", "Control+E", "Control+Enter"):
        page.keyboard.press(key)
    expect(lines).to_have_text(["total = a + b"])  # nothing inserted from the Seed box
    expect(page.locator("#dgemma-status")).not_to_contain_text("No gaps found")  # and nothing filled

    page.locator("#dgemma-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+E")  # in the editor the shortcut works
    expect(lines).to_have_text(["<EDIT>total = a + b</EDIT>"])
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+E")  # but not around an EDIT tag
    note = page.get_by_role("alert").filter(has_text="EDIT regions cannot nest")
    expect(note).to_be_visible()
    expect(lines).to_have_text(["<EDIT>total = a + b</EDIT>"])
    page.keyboard.press("Control+Home")
    for _ in range(len("<EDIT>total")):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Control+E")  # nor with the caret inside an EDIT region
    expect(lines).to_have_text(["<EDIT>total = a + b</EDIT>"])
    page.keyboard.press("End")  # any other key in the editor takes the note away
    expect(note).to_have_count(0)
    page.keyboard.press("Control+I")
    expect(lines).to_have_text(["<EDIT>total = a + b</EDIT><FILL>"])


def test_prose_wraps_as_it_is_typed_and_the_language_is_one_click_away(page):
    from playwright.sync_api import expect

    replace_code(page, "def f(x):\n")
    detected = page.locator("#dgemma-detected")
    expect(detected).to_contain_text("Detected: Python")
    content = page.locator("#dgemma-editor .cm-content")
    expect(content).not_to_have_class(re.compile("cm-lineWrapping"))
    page.keyboard.press("Control+A")
    page.keyboard.type("A diffusion model writes by refining a whole draft at once. <FILL> It reads both sides of the gap.")
    expect(content).to_be_focused()  # still typing: no need to leave the editor
    expect(content).to_have_class(re.compile("cm-lineWrapping"))
    expect(detected).to_contain_text("Detected: prose")
    detected.get_by_role("button", name="change the language").click()
    expect(page.locator("#dgemma-language input")).to_be_focused()
    expect(page.get_by_role("option", name="python", exact=True)).to_be_visible()  # the menu is open
    page.get_by_role("option", name="python", exact=True).click()
    expect(detected).to_be_empty()  # a language chosen in the menu needs no detection
    expect(content).not_to_have_class(re.compile("cm-lineWrapping"))


def test_auto_detects_plain_python_without_def_class_or_import(page):
    """Depends on the detection work (syntax.detect_language behind resolve_language)."""
    from playwright.sync_api import expect

    replace_code(page, "for i in range(10):\n")
    page.keyboard.type("print(<FILL>)")
    expect(page.locator("#dgemma-detected")).to_contain_text("Detected: Python")
    knob(page, "Max passes", 2)
    fill_and_wait(page)
    expect(page.locator("#dgemma-badge")).to_contain_text("python")
    expect(page.locator("#dgemma-detected")).to_contain_text("Detected: Python")


def test_auto_takes_prose_that_mentions_function_as_prose(page):
    """Depends on the detection work (syntax.detect_language behind resolve_language)."""
    from playwright.sync_api import expect

    replace_code(page, "Every function in this module returns a new list. <FILL> The caller never sees the old one change.")
    expect(page.locator("#dgemma-detected")).to_contain_text("Detected: prose")
    expect(page.locator("#dgemma-editor .cm-content")).to_have_class(re.compile("cm-lineWrapping"))
    knob(page, "Max passes", 2)
    fill_and_wait(page)
    expect(page.locator("#dgemma-badge")).to_contain_text("Not checked")  # no grammar judges prose


def test_controls_have_names_and_a_disabled_stop_looks_disabled(page):
    from playwright.sync_api import expect

    expect(page.get_by_role("checkbox", name=re.compile("^Teaching mode"))).to_be_visible()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_disabled()
    assert float(stop.evaluate("e => getComputedStyle(e).opacity")) <= 0.6
    expect(page.get_by_role("button", name="▶ Play")).to_be_visible()


def test_no_replacement_character_or_raw_control_character_in_any_canvas_over_20_seeds(page):
    """Noise is full of byte tokens that form no character alone and of control characters: the canvas shows the
    first as ⟨e2⟩ and the second by name (⟨DC3⟩), at the starting canvas and at the last pass, for every seed."""
    from playwright.sync_api import expect

    replace_code(page, UNICODE_HEAVY)
    choose_language(page, "python")
    knob(page, "Max passes", 3)
    knob(page, "Candidates", 1)
    canvas = page.locator("#dgemma-canvas pre.dg-canvas")
    named = 0
    for seed in range(20):
        knob(page, "Seed", seed)
        if canvas.count():
            canvas.evaluate("e => e.setAttribute('data-seen', '')")
        page.get_by_role("button", name=re.compile("^Fill")).click()
        fresh = page.locator("#dgemma-canvas .dg-canvas-box:not(:has(pre[data-seen])) .dg-caption b")
        expect(fresh).to_have_text(re.compile(r"^pass \d+ of \d+"), timeout=WAIT)  # this seed's result, not a live pass
        for position in ("last", 0):
            if position == 0:
                set_pass(page, 0)
                expect(canvas).to_have_attribute("data-step", "0")
            text = canvas.inner_text()
            assert "\ufffd" not in text, (seed, position, text)
            assert not [ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t"], (seed, position)
            named += text.count("⟨")
    assert named  # some noise was a lone byte or a control character, and it was shown by name
