"""One-line gaps: a gap at the end of a line holds the filler only after the line break the model writes, and that
break ends the fill. Pure parts first, then the engine on a real (random-weight) DiffusionGemma whose output layer
is nudged towards line breaks by a forward hook, so that it writes them everywhere."""
from __future__ import annotations

import pytest
import torch

from dgemma_app.backends.canvas_maths import NEG_INF, end_at_breaks, hold_line_breaks
from dgemma_app.engine import Engine
from dgemma_app.gaps import give_back, line_ends, parse_markers, segment_texts, whole_lines
from dgemma_app.model import load_model


@pytest.mark.parametrize("text, ends", [
    ("def f():\n    return <FILL>\n", [False, True, False]),
    ("x = <FILL>", [False, True]),
    ("x = <FILL>\r\ny = 1", [False, True, False]),
    ("f(<FILL>)\n", [False, False, False]),
    ("<FILL:3><FILL>\n", [False, True, False]),
    ("<EDIT>a = 1</EDIT>\n", [False, False]),
])
def test_line_ends_marks_the_gaps_whose_text_after_starts_a_line(text, ends):
    assert line_ends(parse_markers(text)) == ends


@pytest.mark.parametrize("text, trails", [
    ("def f():\n<FILL>    return 1\n", ["", "\n", ""]),  # a whole line: its break is the gap's
    ("<FILL>\tx = 1", ["\n", ""]),
    ("a\r\n<FILL>  b", ["", "\r\n", ""]),
    ("def f():\n    <FILL>\n", ["", "", ""]),  # the rest of a line: the break after it is the text's
    ("a\n<FILL>\n    b", ["", "", ""]),
    ("a\n<FILL>b\n", ["", "", ""]),  # text at column 0 or after one space may go on the gap's line
    ("a\n<FILL> = 1\n", ["", "", ""]),
    ("a\n<FILL>    \n", ["", "", ""]),  # blanks only: no next line's indentation
    ("a = <FILL>    b", ["", "", ""]),  # not at a line start
    ("a\n<EDIT>x</EDIT>    b", ["", "", ""]),
])
def test_whole_lines_marks_gaps_of_whole_lines_with_their_break(text, trails):
    assert whole_lines(parse_markers(text)) == trails


def test_a_whole_line_gap_hands_its_break_to_the_text_after_and_gets_it_back():
    segments = parse_markers("a\n<FILL>    b\n")
    assert segment_texts(segments, ["", "\n", ""], ["", "\n", ""]) == ["a", "", "\n    b\n"]
    assert give_back("\n    x", "\n", "\n") == "    x\n"


def test_end_at_breaks_ends_each_gap_from_its_first_break():
    owner = torch.tensor([[-1, 0, 0, 0, 0, -1, 1, 1, 1]])  # [1, 9]: two gaps
    stop = torch.tensor([[False, False, True, False, True, False, False, False, False]])
    assert end_at_breaks(stop, owner).tolist() == [[False, False, True, True, True, False, False, False, False]]
    assert not end_at_breaks(torch.zeros_like(stop), owner).any()


def test_hold_line_breaks_bans_the_filler_before_a_break_and_a_break_where_a_token_must_be():
    scores = torch.zeros(1, 3, 5)  # [B, C, V]; token 4 is the filler, 1 a break, 2 a token with a break inside
    free = torch.tensor([[False, True, True]])
    no_break = torch.tensor([[False, True, False]])
    breaks, inner = torch.tensor([False, True, False, False, False]), torch.tensor([False, False, True, False, False])
    out = hold_line_breaks(scores, free, no_break, 4, breaks, inner)
    assert out[0, 0].tolist() == [0.0] * 5  # not part of a line-end gap: untouched
    assert out[0, 1].tolist() == [0.0, NEG_INF, NEG_INF, 0.0, NEG_INF]
    assert out[0, 2].tolist() == [0.0, 0.0, NEG_INF, 0.0, NEG_INF]


@pytest.fixture(scope="module")
def breaking_engine(tiny_model_dir):
    """An engine whose model puts +20 on every line-break token's logit (a model sure that each line ends now)."""
    loaded = load_model(tiny_model_dir, device_map="cpu")
    texts = loaded.tokenizer.batch_decode([[i] for i in range(loaded.model.config.get_text_config().vocab_size)])
    breaks = torch.tensor([t.startswith("\n") for t in texts])
    assert breaks.any()
    loaded.model.lm_head.register_forward_hook(lambda module, args, out: out + 20.0 * breaks.to(out.dtype))
    return Engine(loaded)


def fill(engine: Engine, text: str, **knobs):
    return engine.fill(text, "python", engine.settings(candidates=1, max_passes=8, **knobs))


def test_a_line_break_ends_a_gap_at_the_end_of_a_line(breaking_engine):
    result = fill(breaking_engine, "x = <FILL>\ny = 2\n")
    assert result.fills[0] and "\n" not in result.fills[0]  # a token of its own, then the break ended it
    assert result.text == "x = " + result.fills[0] + "\ny = 2\n"
    null, last = breaking_engine.loaded.null_id, result.candidates[0].trace[-1]  # the window's last pass
    assert last.token_ids[0] != null and last.token_ids[1:16] == [null] * 15  # the 16 slots: one token, then filler
    off = fill(breaking_engine, "x = <FILL>\ny = 2\n", one_line=False)
    assert "\n" in off.fills[0]  # the same model, the rule off: the breaks stay in the fill


def test_left_to_right_stops_at_the_line_break_as_at_an_end_token(breaking_engine):
    result = fill(breaking_engine, "x = <FILL>\ny = 2\n", left_to_right=True)
    assert result.fills[0] and "\n" not in result.fills[0]
    assert result.stats.passes == 2  # slot 0 may not be a break; slot 1 is, and it ends the gap in that pass


def test_a_gap_inside_a_line_may_run_over_lines(breaking_engine):
    result = fill(breaking_engine, "print(<FILL>)\n")
    assert "\n" in result.fills[0]


def test_a_break_ends_the_gap_beyond_the_window_too(breaking_engine):
    """A 40-slot gap on a 16-position canvas: the break in the first window makes the other 24 slots filler, so no
    second window runs."""
    result = fill(breaking_engine, "x = <FILL:40>\n")
    assert "\n" not in result.fills[0] and result.stats.windows == 1
    exact = fill(breaking_engine, "x = <FILL:40>\n", exact_length=True)
    assert exact.stats.windows > 1  # an exact-length gap has no filler, so no break can end it


def test_a_whole_line_gap_keeps_its_line_break_and_ends_there(breaking_engine):
    """A gap of a whole line (the text after it starts the next line): the model's first token is the break before
    the line and an indentation, then a token of its own, then its break ends the fill, which keeps a break."""
    text = "def f(x):\n    y = x\n<FILL>    return y\n"
    result = fill(breaking_engine, text)
    line = result.fills[0]
    assert line.endswith("\n") and line.count("\n") == 1 and line.startswith(" ")
    assert result.text == text.replace("<FILL>", line)
    assert result.candidates[0].tokens == 2 and result.stats.windows == 1  # break and indentation, a token; then filler
    off = fill(breaking_engine, text, one_line=False)  # the rule off: the gap runs free, its text as before
    assert off.fills[0].count("\n") > 1
