"""Bad-input fuzzing (hypothesis) of the marker parser and of the engine with the tiny model.

Properties:
- the parser, on any text (odd Unicode, lone surrogates, control bytes, thousands of markers,
  nested and unbalanced markers), returns segments or raises `MarkerError`, nothing else;
- marked text built from known pieces parses to exactly those pieces, and `stitch` puts fills back
  with the known text untouched;
- the engine, on small random inputs and random settings in and out of range, returns a
  `FillResult` whose text keeps every known span exactly, or raises a `ValueError` subclass with a
  one-line message; never another exception.

Bounded: small examples, at most 3 denoising passes, a few dozen engine cases, so the file runs in
well under a minute. `pytest tests/test_fuzz.py -s` prints how many cases ran;
`--hypothesis-show-statistics` gives hypothesis' own figures.
"""
from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgemma_app import gaps
from dgemma_app.backends.base import FillCancelled
from dgemma_app.backends.diffusion_gemma import DiffusionGemmaSettings
from dgemma_app.results import FillResult
from dgemma_app.settings import SettingsError
from dgemma_app.gaps import Edit, Gap, Known, MarkerError, parse_markers, stitch, without_gaps

CASES: Counter = Counter()  # outcome counts, printed at the end of the module

FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces that stress the marker grammar and Unicode handling; the hostile ones come up less often
# so that about half of the random texts still parse.
FRAGMENTS = [
    "<FILL>", ">", "<FILL:3>", "<FILL: 2 >", "<fill>", "<EDIT>a\n</EDIT>", "<", "FILL", "\n", "\r\n", "\t",
    "\ufeff", "\u202e", "\u200d", "e\u0301", "\U0001d518", "\U0001f469\u200d\U0001f467", "\uffff", "def f():",
    "    return ", " = ", "#",
]
HOSTILE = ["<FILL:", "<EDIT>", "</EDIT>", "<FILL:0>", "<FILL:-1>", "<FILL:4097>", "<FILL:x>", "<FILL:99999999999999999999>", "<EDIT/>", "\x00", "\x1b", "\x7f", "\ud800", "\udfff"]
any_char = st.characters()  # every code point but lone surrogates, which come from HOSTILE
pieces = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(FRAGMENTS), st.sampled_from(FRAGMENTS), st.sampled_from(HOSTILE), st.text(any_char, max_size=8)),
    max_size=16,
).map("".join)
random_text = st.one_of(  # mostly with at least one well-formed marker (hypothesis favours the first branch)
    st.tuples(pieces, st.sampled_from(["<FILL>", "<FILL:7>", "<EDIT>b</EDIT>"]), pieces).map("".join), pieces
)


# ----------------------------------------------------------------------------- parser: any text


@settings(FUZZ, max_examples=300)
@given(
    text=random_text,
    max_markers=st.one_of(st.just(gaps.MAX_MARKERS), st.integers(0, 6)),
    max_bytes=st.one_of(st.just(gaps.MAX_INPUT_BYTES), st.integers(0, 300)),
)
def test_parser_returns_segments_or_marker_error(text, max_markers, max_bytes):
    try:
        segments = parse_markers(text, max_bytes=max_bytes, max_markers=max_markers)
    except MarkerError as err:
        message = str(err)
        assert message and "\n" not in message and message.endswith(".")
        CASES["parser: MarkerError"] += 1
        return
    CASES["parser: segments"] += 1
    markers = [s for s in segments if not isinstance(s, Known)]
    assert markers and len(markers) <= max_markers
    assert len(text.encode("utf-8")) <= max_bytes  # also: no lone surrogate got through
    assert not any(isinstance(a, Known) and isinstance(b, Known) for a, b in zip(segments, segments[1:]))
    for gap in (s for s in markers if isinstance(s, Gap)):
        assert gap.size is None or 1 <= gap.size <= gaps.MAX_FILL_SIZE
        assert gap.line >= 1 and gap.column >= 1
    # Known text is the input with the markers (and only the markers) taken out.
    fills = [f"\x01{i}\x02" for i in range(len(markers))]
    stitched, spans = stitch(segments, fills)
    assert [stitched[a:b] for a, b in spans] == fills
    known = "".join(s.text for s in segments if isinstance(s, Known))
    assert re.sub("\x01\\d+\x02", "", stitched) == known
    assert len(known) + sum(len(s.old) for s in markers if isinstance(s, Edit)) <= len(text)


# ----------------------------------------------------------------------------- parser: round trip

plain_char = st.characters(codec=None, exclude_categories=["Cc", "Cs"], exclude_characters="<") | st.sampled_from("\n\t")
known_piece = st.text(plain_char, min_size=1, max_size=10).map(lambda s: ("known", s))
gap_piece = st.one_of(st.none(), st.integers(1, gaps.MAX_FILL_SIZE)).map(lambda n: ("gap", n))
edit_piece = st.text(plain_char, max_size=10).map(lambda s: ("edit", s))
layouts = st.lists(st.one_of(known_piece, gap_piece, edit_piece), min_size=1, max_size=30).filter(
    lambda pieces: any(kind != "known" for kind, _ in pieces)
)


def render(pieces) -> str:
    out = []
    for kind, value in pieces:
        out.append(value if kind == "known" else f"<EDIT>{value}</EDIT>" if kind == "edit" else "<FILL>" if value is None else f"<FILL:{value}>")
    return "".join(out)


@settings(FUZZ, max_examples=150)
@given(pieces=layouts, fill_text=st.lists(st.text(any_char, max_size=6), min_size=30, max_size=30))
def test_marked_text_round_trips(pieces, fill_text):
    text = render(pieces)
    segments = parse_markers(text, max_bytes=1 << 30, max_markers=10**6)
    CASES["round trip"] += 1
    expected = []
    offset = 0
    for kind, value in pieces:
        line, column = text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1
        if kind == "known":
            if expected and isinstance(expected[-1], Known):
                expected[-1] = Known(expected[-1].text + value)
            else:
                expected.append(Known(value))
        elif kind == "gap":
            expected.append(Gap(value, line, column))
        else:
            expected.append(Edit(value, line, column))
        offset += len(render([(kind, value)]))
    assert segments == expected
    fills = fill_text[: sum(kind != "known" for kind, _ in pieces)]
    stitched, spans = stitch(segments, fills)
    remaining = iter(fills)
    assert stitched == "".join(value if kind == "known" else next(remaining) for kind, value in pieces)
    assert [stitched[a:b] for a, b in spans] == fills
    assert without_gaps(segments) == "".join(value if kind in ("known", "edit") else "" for kind, value in pieces)


# ----------------------------------------------------------------------------- parser: sizes


def test_thousands_of_markers():
    text = "x = <FILL:1>\n" * 5000
    with pytest.raises(MarkerError, match="more than 256 markers"):
        parse_markers(text)
    started = time.perf_counter()
    segments = parse_markers(text, max_markers=5000)
    assert sum(isinstance(s, Gap) for s in segments) == 5000
    assert segments[-2] == Gap(1, 5000, 5)
    assert time.perf_counter() - started < 5
    CASES["parser: sizes"] += 2


def test_input_size_limit_is_exact():
    at_limit = "<FILL>" + "a" * (gaps.MAX_INPUT_BYTES - 6)
    assert len(parse_markers(at_limit)) == 2
    with pytest.raises(MarkerError, match="1,048,577 bytes, over the limit of 1,048,576"):
        parse_markers(at_limit + "a")
    with pytest.raises(MarkerError, match="over the limit"):  # counted in UTF-8 bytes, not characters
        parse_markers("<FILL>" + "\u00e9" * (gaps.MAX_INPUT_BYTES // 2))
    CASES["parser: sizes"] += 3


def test_many_markers_in_a_mebibyte_parse_quickly():
    body = "x = 1\n" * (gaps.MAX_INPUT_BYTES // 6 - 300)
    step = len(body) // gaps.MAX_MARKERS
    text = "<FILL>".join(body[i * step : (i + 1) * step] for i in range(gaps.MAX_MARKERS))
    started = time.perf_counter()
    assert sum(isinstance(s, Gap) for s in parse_markers(text)) == gaps.MAX_MARKERS - 1
    assert time.perf_counter() - started < 5
    CASES["parser: sizes"] += 1


def test_unclosed_size_markers_parse_in_linear_time():
    """Runs of `<FILL:` without `>` once backtracked quadratically: 96 KB took 30 s, and 1 MiB (under
    the input limit) would have taken about an hour. Now a full mebibyte of them takes milliseconds."""
    text = "<FILL:" * (gaps.MAX_INPUT_BYTES // 6 - 2) + "\n<FILL>"
    started = time.perf_counter()
    assert len(parse_markers(text)) == 2  # the unclosed ones are plain text
    assert time.perf_counter() - started < 2.0
    CASES["parser: sizes"] += 1


# ----------------------------------------------------------------------------- engine

engine_char = st.characters()  # lone surrogates come from ENGINE_HOSTILE
ENGINE_FRAGMENTS = [
    "<FILL>", "<FILL:1>", "<FILL:3>", "<EDIT>x = 1</EDIT>", "<EDIT></EDIT>", "def f():\n", "    return ", "\n",
    "\u00e9", "\U0001f469\u200d\U0001f467", "\u202e", "\t", "\r\n",
]
ENGINE_HOSTILE = ["<FILL:0>", "<FILL:5000>", "<EDIT>", "</EDIT>", "\x00", "\ud800"]
clean_pieces = st.lists(st.one_of(st.sampled_from(ENGINE_FRAGMENTS), st.text(engine_char, max_size=6)), max_size=5).map("".join)
hostile_pieces = st.lists(
    st.one_of(st.sampled_from(ENGINE_FRAGMENTS), st.sampled_from(ENGINE_HOSTILE), st.text(engine_char, max_size=6)), max_size=6
).map("".join)
engine_text = st.one_of(  # hypothesis favours the first branch: mostly well-formed, often hostile
    st.tuples(clean_pieces, st.sampled_from(["<FILL>", "<FILL:2>", "<EDIT>y</EDIT>"]), clean_pieces).map("".join), hostile_pieces
)


NAN, INF = float("nan"), float("inf")
KNOBS = {  # name: (cheap in-range values, values out of range or of the wrong type)
    "max_passes": (st.integers(1, 3) | st.just(2.0), [0, -1, 1025, 10**12, None, "3", NAN, True, 1.5]),
    "entropy_bound": (st.floats(1e-6, 1000.0), [0.0, -0.1, 1e9, NAN, INF, -INF, "0.1", None]),
    "t_max": (st.floats(0.5, 10.0), [0.0, 11.0, NAN, INF, None]),
    "t_min": (st.floats(1e-3, 0.49), [-1.0, 0.0, NAN, None, 0.6]),
    "stability_threshold": (st.integers(0, 64), [-1, 65, None, False, 0.5]),
    "confidence_threshold": (st.floats(1e-9, 100.0), [0.0, -1.0, NAN, 1e300]),
    "seed": (st.integers(0, 2**31 - 1), [-1, 2**31, 2**64, None, 1.5]),
    "candidates": (st.integers(1, 2) | st.just(1.0), [0, 17, -3, None, 1.5]),
    "slot_budget": (st.integers(1, 8) | st.just(4.0), [0, 4097, -8, None, 2.5]),
    "edit_strength": (st.floats(0.0, 1.0), [-0.01, 1.01, NAN, INF, None]),
    "left_to_right": (st.booleans(), []),
}


@st.composite
def setting_values(draw) -> dict:
    """Every knob in range (two cases in three), or one or two of them out of range."""
    values = {name: draw(cheap) for name, (cheap, _) in KNOBS.items()}
    if draw(st.integers(0, 2)) == 2:  # hypothesis favours 0, the in-range case
        for name in draw(st.lists(st.sampled_from([n for n, (_, bad) in KNOBS.items() if bad]), min_size=1, max_size=2)):
            values[name] = draw(st.sampled_from(KNOBS[name][1]))
    return values


languages = st.sampled_from(["python", "javascript", "rust", "text"])


def known_spans_kept(text: str, result: FillResult) -> None:
    """Known text is preserved exactly around the fills, for the chosen text and every candidate."""
    segments = parse_markers(text, max_bytes=1 << 30, max_markers=10**6)
    markers = sum(not isinstance(s, Known) for s in segments)
    assert len(result.fills) == markers
    assert result.text == stitch(segments, result.fills)[0]
    for candidate in result.candidates:
        assert len(candidate.fills) == markers
        assert candidate.text == stitch(segments, candidate.fills)[0]
        assert [candidate.text[a:b] for a, b in candidate.fill_spans] == candidate.fills


@settings(FUZZ, max_examples=30)
@given(text=engine_text, values=setting_values(), language=languages)
def test_engine_returns_result_or_clear_error(engine, text, values, language):
    try:
        result = engine.fill(text, language, DiffusionGemmaSettings(**values))
    except ValueError as err:  # MarkerError, SettingsError, UnknownLanguageError
        message = str(err)
        assert message and "\n" not in message, repr(message)
        assert type(err).__module__.startswith("dgemma_app"), f"{type(err).__name__} leaked from a library: {message}"
        CASES[f"engine: {type(err).__name__}"] += 1
        return
    CASES["engine: FillResult"] += 1
    assert isinstance(result, FillResult)
    known_spans_kept(text, result)
    assert result.stats.passes >= 0 and result.stats.seconds >= 0  # 0 passes: only edits at strength 0
    assert 1 <= len(result.candidates) <= values["candidates"]


@settings(FUZZ, max_examples=10)
@given(
    prefix=st.text(st.characters(exclude_characters="<"), max_size=20),
    suffix=st.text(st.characters(exclude_characters="<"), max_size=20),
    size=st.integers(1, 12),
    edit=st.booleans(),
)
def test_engine_keeps_known_text_exactly(engine, prefix, suffix, size, edit):
    """One gap (or edit) between arbitrary known text: prefix and suffix come back byte for byte."""
    marker = "<EDIT>x = 1</EDIT>" if edit else f"<FILL:{size}>"
    text = "def f():\n    " + prefix + marker + suffix + "\n"
    try:
        result = engine.fill(text, "python", engine.settings(max_passes=2, seed=size))
    except MarkerError as err:  # control characters can make the text look binary; `characters()` can draw a lone surrogate
        assert "binary" in str(err) or "lone surrogate" in str(err)
        CASES["engine known: MarkerError"] += 1
        return
    CASES["engine known: FillResult"] += 1
    head = "def f():\n    " + prefix
    tail = suffix + "\n"
    assert result.text.startswith(head) and result.text.endswith(tail)
    assert result.text[len(head) : len(result.text) - len(tail)] == result.fills[0]


def test_cancel_stops_the_fill_and_the_engine_keeps_serving(engine):
    """A cancel set mid-fill (a browser that went away) stops after the current pass."""
    cancel = threading.Event()
    passes = []

    def on_pass(item):
        passes.append(item.step)
        if item.step >= 1:
            cancel.set()

    settings_ = engine.settings(max_passes=40, stability_threshold=64, confidence_threshold=1e-9)
    with pytest.raises(FillCancelled):
        engine.fill("x = <FILL:16>\n" * 3, "python", settings_, on_pass=on_pass, cancel=cancel)
    assert max(passes) <= 2  # stopped within a pass of the request, not after 40 x 3 windows
    result = engine.fill("x = <FILL:2>\n", "python", engine.settings(max_passes=2))
    assert result.text.startswith("x = ")
    CASES["engine: cancel"] += 1


@pytest.mark.parametrize("name", ["candidates", "slot_budget", "stability_threshold", "seed", "max_passes"])
def test_fractional_integer_settings_are_settings_errors(engine, name):
    """Found by this file: 1.5 used to pass validation and fail deep in torch with a TypeError."""
    with pytest.raises(SettingsError, match="whole number"):
        engine.fill("x = <FILL>\n", "python", engine.settings(**{"max_passes": 2, name: 1.5}))
    CASES["engine: SettingsError"] += 1


def test_lone_surrogate_is_a_clear_error(engine):
    """Found by this file: a JSON '\\ud800' from the API used to reach the tokenizer (TypeError)."""
    with pytest.raises(MarkerError, match="lone surrogate"):
        engine.fill("x = '\ud800' + <FILL:2>\n", "python", engine.settings(max_passes=1))
    CASES["engine: MarkerError"] += 1


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    total = sum(CASES.values())
    print(f"\nfuzz cases run: {total} — " + ", ".join(f"{k}: {v}" for k, v in sorted(CASES.items())))
