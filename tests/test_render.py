"""The page's numbers and words, from the render functions and a real fill of the tiny model (no browser)."""
from __future__ import annotations

import re

from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings as Settings
from dgemma_app.results import FillStats, Position, TracePass
from dgemma_app.syntax import ParseIssue, ParseReport
from dgemma_app.trace import pass_positions
from dgemma_app.ui import render
from dgemma_app.ui.player import last_pass


def _pass(window: int, step: int, states: list[Position], entropy: float = 0.0, pieces: list[str] | None = None) -> TracePass:
    n = len(states)
    return TracePass(window, step, [0] * n, pieces or ["a"] * n, states, [False] * n, [0.5] * n, [entropy] * n)


def test_one_pass_count_for_the_stats_the_slider_the_caption_and_the_plot(engine):
    """A fill over several windows: a later window's starting canvas is not a pass, so the slider's last position is
    the candidate's pass count, and the caption and the plot's axis end there too."""
    result = engine.fill("x = [<FILL:40>]\n", "python", Settings(max_passes=3, candidates=1, one_line=False))
    best = result.candidates[0]
    assert result.stats.windows >= 2 and best.passes == result.stats.passes
    positions = pass_positions(best.trace)
    assert len(positions) - 1 == best.passes == last_pass(result, 0)
    assert len(best.trace) == best.passes + result.stats.windows  # each window's start is in the trace, not a pass
    last = render.trace_caption(best.trace, best.passes)
    assert last.startswith(f"pass {best.passes} of {best.passes} · window {result.stats.windows} of {result.stats.windows}")
    assert render.trace_caption(best.trace, 0) == f"pass 0 of {best.passes} (starting canvas)"
    assert re.search(rf'class="dg-plot-tick dg-plot-last"[^>]*>{best.passes}<', render.plot(best.trace, 1))


def test_an_edit_at_strength_0_has_no_speed_and_no_confidence(engine):
    result = engine.fill("x = <EDIT>1</EDIT>\n", "python", Settings(edit_strength=0.0, candidates=1))
    assert result.text == "x = 1\n" and result.stats.passes == 0 and result.stats.seconds >= 0  # never -0.00 s
    html = render.stats(result.stats, [])
    assert "0 passes" in html and "tokens/s" not in html and "-0" not in html
    label = render.candidate_label(result, 0)
    assert "confidence" not in label and "strength 0" in label


def test_tokens_are_slots_that_hold_a_token_and_the_filler_is_counted_apart():
    accepted = [Position.ACCEPTED] * 4
    html = render.canvas(_pass(0, 3, [Position.KNOWN, *accepted], pieces=["x", "1", "<null>", "<null>", "<null>"]), "pass 3 of 3")
    assert "4 of 4 slots accepted (1 token, 3 filler)" in html
    assert "gap tokens" not in html
    chips = render.stats(FillStats(1.0, 3, 1, 0.333, 1.0, 1), [])
    assert ">1 token<" in chips and "filler are not tokens" in chips


def test_control_characters_are_named_and_bytes_keep_their_brackets():
    html = render.visible("a\x13b\u200b\x7f")
    assert "⟨DC3⟩" in html and "⟨U+200B⟩" in html and "⟨DEL⟩" in html
    assert "\x13" not in html and "\u200b" not in html and "\x7f" not in html
    assert render.visible("⟨e2⟩ λ") == "⟨e2⟩<span class=\"dg-ws\">·</span>λ"


def test_the_entropy_axis_reads_on_short_fills():
    assert [render.nice_ceiling(v) for v in (0.0042, 0.02, 0.7, 1.0, 3.2, 0.0)] == [0.005, 0.02, 1.0, 1.0, 5.0, 1.0]
    trace = [_pass(0, 0, [Position.NOISE] * 2), _pass(0, 1, [Position.KEPT] * 2, 0.0031), _pass(0, 2, [Position.ACCEPTED] * 2, 0.001)]
    svg = render.plot(trace, 2)
    assert 'class="dg-plot-ent"' in svg and ">0.005<" in svg and ">0.00<" not in svg


def _report(issues: list[ParseIssue], before: int) -> ParseReport:
    return ParseReport("python", checked=True, parses=False, issues=issues, errors_before=before,
                       new_errors=any(i.in_fill for i in issues) or len(issues) > before)


def test_the_badge_counts_each_error_once_new_or_old():
    at_fill, elsewhere = ParseIssue(2, 5, 2, 9, "ERROR", "(1 +", True), ParseIssue(1, 1, 1, 3, "ERROR", "(:", False)
    one_new = render.badge(_report([at_fill], 1))  # the error at the fill is new, whatever the input alone had
    assert "1 new parse error (python)" in one_new and "already" not in one_new and "input alone" not in one_new
    both = render.badge(_report([at_fill, elsewhere], 1))
    assert "1 new parse error" in both and "1 more already in the input" in both
    old = render.badge(_report([elsewhere], 1))
    assert "1 parse error already in the input, none new" in old
    cpython = ParseIssue(3, 1, 3, 2, "IndentationError", "expected an indented block", True)
    assert "1 new parse error" in render.badge(_report([cpython], 1))  # CPython's errors by the same rule


def test_the_detected_language_line():
    assert "Detected: <b>Python</b>" in render.detected("python", True) and 'class="dg-change"' in render.detected("python", True)
    assert "prose" in render.detected("text", True) and "not recognised" in render.detected(None, True)
    assert render.detected("python", False) == ""
