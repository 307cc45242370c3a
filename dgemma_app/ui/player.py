"""The pass player: Play/Pause animates the pass slider through the trace, with a speed, single steps and a loop.

A `gr.Timer` moves the slider one pass per tick; the slider's own change event redraws the canvas, so playing,
stepping and dragging show a pass the same way. Every handler only indexes the fill result already in the page.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..results import FillResult
from ..trace import pass_positions

PLAY, PAUSE = "▶ Play", "Pause"  # ⏸ is missing from many fonts (a box): plain text
SPEED = 2.0  # passes per second at first: slow enough to read a pass, fast enough to see the trend


@dataclass
class Player:
    """The player's controls and its clock."""

    play: gr.Button
    back: gr.Button
    forward: gr.Button
    speed: gr.Slider
    loop: gr.Checkbox
    timer: gr.Timer
    playing: gr.State


def build_player() -> Player:
    """The controls, in one row under the pass slider."""
    with gr.Row(elem_id="dgemma-player", equal_height=False):
        back = gr.Button("◀ Step back", size="sm", elem_id="dgemma-back", min_width=90)
        play = gr.Button(PLAY, size="sm", variant="secondary", elem_id="dgemma-play", min_width=90)
        forward = gr.Button("Step forward ▶", size="sm", elem_id="dgemma-forward", min_width=90)
        speed = gr.Slider(0.5, 10, value=SPEED, step=0.5, label="Speed (passes per second)", min_width=180, scale=2)
        loop = gr.Checkbox(False, label="Loop", min_width=80)
    return Player(play, back, forward, speed, loop, gr.Timer(1 / SPEED, active=False), gr.State(False))


def wire_player(player: Player, slider: gr.Slider, state: gr.State, candidate: gr.Radio, stop_on: list) -> None:
    """Connect the controls to the slider; any event in `stop_on` (a new fill) pauses the player."""
    p = player
    run = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
    clock = [p.playing, p.timer, p.play]
    p.play.click(toggle, [p.playing, slider, state, candidate], [*clock, slider], **run)
    p.timer.tick(advance, [slider, state, candidate, p.loop], [slider, *clock], **run)
    p.back.click(lambda i, r, c: step(i, r, c, -1), [slider, state, candidate], [slider], **run)
    p.forward.click(lambda i, r, c: step(i, r, c, 1), [slider, state, candidate], [slider], **run)
    p.speed.change(lambda speed: gr.Timer(1 / speed), [p.speed], [p.timer], **run)
    for event in stop_on:
        event(paused, None, clock, **run)


def last_pass(result: FillResult | None, candidate: int | None) -> int:
    """The slider's last position for the shown candidate, its pass count (-1: nothing to play)."""
    return -1 if result is None else len(pass_positions(result.candidates[candidate or 0].trace)) - 1


def paused() -> tuple:
    return False, gr.Timer(active=False), gr.Button(PLAY)


def toggle(playing: bool, index: float, result: FillResult | None, candidate: int | None) -> tuple:
    """Play from here (from the start when at the end), or pause."""
    last = last_pass(result, candidate)
    if playing or last < 1:
        return *paused(), gr.skip()
    start = 0 if int(index) >= last else int(index)
    return True, gr.Timer(active=True), gr.Button(PAUSE), start


def advance(index: float, result: FillResult | None, candidate: int | None, loop: bool) -> tuple:
    """One tick: the next pass; at the end, back to the start when looping, else pause there."""
    last = last_pass(result, candidate)
    if last < 1:
        return gr.skip(), *paused()
    if int(index) < last:
        return int(index) + 1, gr.skip(), gr.skip(), gr.skip()
    if loop:
        return 0, gr.skip(), gr.skip(), gr.skip()
    return gr.skip(), *paused()


def step(index: float, result: FillResult | None, candidate: int | None, delta: int):
    """One pass back or forward, staying on the trace."""
    last = last_pass(result, candidate)
    return gr.skip() if last < 0 else min(max(int(index) + delta, 0), last)
