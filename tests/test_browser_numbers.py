"""Every number on the page agrees with every other (issue 20, "Numbers and words"), in a real Chromium.

The status line, the stats chips, the pass slider, the canvas caption and the plot count passes the same way (a later
window's starting canvas is not a pass) and tokens the same way (a slot holding the filler is not a token); a typed
pass past the end is clamped in the page, and an <EDIT> at strength 0 says that there was nothing to fill.
"""
from __future__ import annotations

import logging
import re

from browser_support import *  # noqa: F403 (fixtures, pytestmark)
from browser_support import WAIT, choose_language, fill_and_wait, knob, replace_code, set_pass

SLOTS = re.compile(r"(\d+) of (\d+) slots? accepted(?: \((\d+) tokens?, (\d+) filler\))?")
WINDOW = re.compile(r"pass (\d+) of (\d+) · window (\d+) of (\d+), its pass (\d+) of (\d+)")


def chip(page, pattern: str) -> int:
    """The number in the stats chip that matches `pattern` (e.g. r'(\\d+) pass')."""
    return int(re.fullmatch(pattern, page.locator("#dgemma-stats .dg-chip").filter(has_text=re.compile(f"^{pattern}$")).first.inner_text()).group(1))


def test_status_slider_and_stats_agree_and_bad_settings_are_named(page):
    from playwright.sync_api import expect

    expect(page.locator("#dgemma-model")).to_contain_text("canvas", timeout=WAIT)
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_disabled()  # nothing runs, so there is nothing to stop
    page.get_by_role("button", name="Python: return the result").click()
    fill_and_wait(page)
    status = page.locator("#dgemma-status")
    passes = int(re.search(r"took (\d+) pass", status.inner_text()).group(1))
    slider = page.get_by_label("number input for Pass")
    assert int(slider.input_value()) == passes  # one window: the last position is its last pass
    expect(page.locator("#dgemma-canvas .dg-caption")).to_contain_text(f"pass {passes} of {passes}")
    assert chip(page, r"(\d+) pass(?:es)?") == passes
    set_pass(page, 0)
    expect(page.locator("#dgemma-canvas .dg-caption")).to_contain_text("before any prediction")
    expect(page.locator("#dgemma-badge")).to_contain_text("compile()")  # what the verdict covers

    knob(page, "Max passes", 9999)
    expect(page.get_by_role("alert").filter(has_text="Max passes: 9999 is outside")).to_be_visible()
    knob(page, "Seed", -1)
    page.get_by_role("button", name=re.compile("^Fill")).click()
    expect(status.get_by_role("alert")).to_contain_text("seed is -1")


def test_an_edit_at_strength_0_says_there_was_nothing_to_fill(page):
    from playwright.sync_api import expect

    replace_code(page, "x = <EDIT>1</EDIT>\n")
    choose_language(page, "python")
    knob(page, "Edit strength", 0)
    fill_and_wait(page, done="Nothing to fill")  # not a failure, and no "Filled in -0.00 s"
    expect(page.locator("#dgemma-status")).to_contain_text("keeps its old text, so the model made no passes")
    expect(page.locator("#dgemma-canvas")).to_contain_text("Nothing was denoised")
    stats = page.locator("#dgemma-stats")
    expect(stats.locator(".dg-chip")).to_have_text(["0 passes"])  # no speed, no "0.0 tokens/s"
    candidates = page.locator("#dgemma-candidates")
    expect(candidates).to_contain_text("kept as it was (strength 0)")
    expect(candidates).not_to_contain_text("confidence")
    expect(page.locator("#dgemma-result")).to_contain_text("x = 1")


def test_a_fill_over_several_windows_counts_passes_and_tokens_the_same_everywhere(page, capfd, caplog):
    """Three windows: the status, the stats, the slider's range, the captions and the plot's axis give one pass count,
    the windows' own passes add up to it, and the tokens the windows accepted add up to the stats' tokens. Then a
    pass typed past the end is clamped in the page, with no error in the server's log."""
    from playwright.sync_api import expect

    replace_code(page, "values = [<FILL:150>]\n")  # 150 slots on a 64-token canvas: three windows
    choose_language(page, "python")
    knob(page, "Max passes", 4)
    knob(page, "Candidates", 1)
    fill_and_wait(page)
    status = page.locator("#dgemma-status").inner_text()
    passes = int(re.search(r"took (\d+) pass", status).group(1))
    assert chip(page, r"(\d+) pass(?:es)?") == passes and chip(page, r"(\d+) windows?") == 3
    tokens = chip(page, r"(\d+) tokens?")
    box = page.get_by_label("number input for Pass")
    assert int(box.get_attribute("max")) == passes and int(box.input_value()) == passes
    expect(page.locator("svg.dg-plot .dg-plot-last")).to_have_text(str(passes))  # the plot's x axis ends there too
    caption = page.locator("#dgemma-canvas .dg-caption")

    window_passes, window_tokens = {}, {}
    for position in range(1, passes + 1):
        set_pass(page, position)
        expect(caption).to_contain_text(f"pass {position} of {passes} ·")
        text = caption.inner_text()
        _, total, window, windows, own, own_last = map(int, WINDOW.search(text).groups())
        assert total == passes and windows == 3
        if own == own_last:  # a window's last pass: every slot accepted, each a token or the filler
            accepted, slots, held, filler = SLOTS.search(text).groups()
            assert accepted == slots
            window_passes[window], window_tokens[window] = own_last, int(held) if held else int(accepted)
    assert sorted(window_passes) == [1, 2, 3]
    assert sum(window_passes.values()) == passes
    assert sum(window_tokens.values()) == tokens

    caplog.set_level(logging.INFO)
    capfd.readouterr()
    set_pass(page, 99)
    expect(box).to_have_value(str(passes))
    expect(page.get_by_role("status").filter(has_text="There is no pass 99")).to_be_visible()
    expect(caption).to_contain_text(f"pass {passes} of {passes}")
    set_pass(page, 1)  # a later event still reaches the server, which raised no error for the clamped one
    expect(caption).to_contain_text(f"pass 1 of {passes}")
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "greater than maximum" not in out + err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "maximum" in r.getMessage()]
