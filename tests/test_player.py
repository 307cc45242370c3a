"""The pass player's and teaching mode's handlers, on a real fill's result (no browser)."""
import gradio as gr

from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings as Settings
from dgemma_app.ui import compare
from dgemma_app.ui.player import PAUSE, PLAY, advance, step, toggle
from dgemma_app.ui.teaching import TEACHING, teaching_note, teaching_values
from dgemma_app.wiring import front_end_settings


def test_play_advances_loops_or_pauses_at_the_end_and_steps_stay_on_the_trace(engine):
    result = engine.fill("x = <FILL:4>\n", "python", Settings(max_passes=4, candidates=1))
    last = len(result.trace) - 1
    playing, timer, button, start = toggle(False, last, result, 0)
    assert playing and timer.active and button.value == PAUSE and start == 0  # at the end, play from the start
    assert advance(1, result, 0, False)[0] == 2
    assert advance(last, result, 0, True)[0] == 0  # looping
    _, playing, timer, button = advance(last, result, 0, False)
    assert playing is False and timer.active is False and button.value == PLAY
    assert toggle(True, 2, result, 0)[0] is False  # pause
    assert step(0, result, 0, -1) == 0 and step(last, result, 0, 1) == last and step(1, result, 0, 1) == 2
    assert step(0, None, None, 1) == gr.skip()  # no result: nothing to step through


def test_teaching_mode_sets_its_values_gives_the_defaults_back_and_says_what_it_changes():
    knobs = front_end_settings()
    defaults = {"entropy_bound": 16.0, "max_passes": 16}
    on = teaching_values(knobs, defaults, True)
    assert on == {name: TEACHING[name] for name in on} and set(on) == set(TEACHING)
    off = teaching_values(knobs, defaults, False)
    assert off["entropy_bound"] == 16.0 and off["max_passes"] == 16
    note = teaching_note(knobs, defaults)
    assert "Entropy bound 0.3 (model: 16.0)" in note and "Play" in note


def test_compare_shows_both_fills_with_their_pass_counts(engine):
    fast = Settings(max_passes=4, candidates=1)
    traces = [engine.fill("y = <FILL:3>\n", "python", fast).trace,
              engine.fill("y = <FILL:3>\n", "python", Settings(max_passes=4, candidates=1, left_to_right=True)).trace]
    html = compare.view(traces, 1)
    assert html.count('class="dg-compare-way"') == 2 and "Diffusion: " in html and "Left to right: " in html
    assert html.count('data-step="1"') == 2
