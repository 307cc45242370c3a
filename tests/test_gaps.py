import pytest

from dgemma_app.gaps import Edit, Gap, Known, MarkerError, parse_markers, stitch, without_gaps


def test_fill_markers_split_text_in_order():
    segments = parse_markers("a = <FILL>\nb = <FILL:24>\n")
    assert segments == [Known("a = "), Gap(None, 1, 5), Known("\nb = "), Gap(24, 2, 5), Known("\n")]


def test_markers_at_start_and_end_and_inside_a_line():
    segments = parse_markers("<FILL>x<FILL:3>y<FILL>")
    assert [type(s) for s in segments] == [Gap, Known, Gap, Known, Gap]


def test_edit_keeps_old_text_with_newlines():
    segments = parse_markers("x = 1\n<EDIT>y = 2\nz = 3</EDIT>\n")
    assert segments[1] == Edit("y = 2\nz = 3", 2, 1)
    assert without_gaps(segments) == "x = 1\ny = 2\nz = 3\n"


def test_without_gaps_drops_fills():
    assert without_gaps(parse_markers("a<FILL>b<FILL:2>c")) == "abc"


def test_stitch_reports_spans_of_each_fill():
    segments = parse_markers("def f():\n    return <FILL>\n<EDIT>old</EDIT>")
    text, spans = stitch(segments, ["42", "new"])
    assert text == "def f():\n    return 42\nnew"
    assert [text[a:b] for a, b in spans] == ["42", "new"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("x = 1\n", "No gaps found"),
        ("", "empty"),
        ("   \n\t", "empty"),
        ("a <EDIT> b", "line 1, column 3 is never closed"),
        ("a\n b </EDIT>", "line 2, column 4 has no matching <EDIT>"),
        ("<EDIT>a <FILL> b</EDIT>", "inside an <EDIT> region"),
        ("<EDIT>a <EDIT> b</EDIT></EDIT>", "cannot be nested"),
        ("x = <FILL:abc>", "whole number"),
        ("x = <FILL:0>", "whole number"),
        ("x = <FILL:99999>", "whole number"),
        ("bin\x00ary <FILL>", "binary"),
    ],
)
def test_bad_inputs_have_located_messages(text, message):
    with pytest.raises(MarkerError, match=message):
        parse_markers(text)


def test_limits_on_size_and_marker_count():
    with pytest.raises(MarkerError, match="over the limit of 100 bytes"):
        parse_markers("x" * 101 + "<FILL>", max_bytes=100)
    with pytest.raises(MarkerError, match="more than 3 markers"):
        parse_markers("<FILL>" * 4, max_markers=3)
    assert len(parse_markers("<FILL>" * 3, max_markers=3)) == 3


def test_lookalike_tags_stay_text():
    segments = parse_markers("<fill> <FILLING> <EDITOR> <FILL>")
    assert segments[0] == Known("<fill> <FILLING> <EDITOR> ")
