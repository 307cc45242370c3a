"""HTML and SVG for the page: the token canvas of one pass, filled code, parse badge, stats, plot.

Pure functions of the engine's dataclasses (no Gradio, no torch), so the page only indexes data
and the tests can call them directly. Every piece of user or model text goes through `escape`.
"""
from __future__ import annotations

import math
import unicodedata
from html import escape

from ..model import NULL_TOKEN
from ..results import FillResult, FillStats, Position, TracePass, counted, rate
from ..syntax import TEXT, ParseIssue, ParseReport, new_error_count
from ..trace import pass_positions

CONFIDENCE_STEPS = (0.2, 0.4, 0.6, 0.8)  # accepted tokens are coloured in five probability bands


def message(text: str, kind: str = "info") -> str:
    """A status line: kind is info, busy, ok or error."""
    icon = {"info": "ℹ", "busy": "", "ok": "✓", "error": "⚠"}[kind]  # busy: a CSS spinner
    role = ' role="alert"' if kind == "error" else ' role="status"'
    return f'<div class="dg-msg dg-msg-{kind}"{role}><span class="dg-icon">{icon}</span> {escape(text)}</div>'


def _band(confidence: float) -> int:
    return sum(confidence >= step for step in CONFIDENCE_STEPS)


# Every canvas state, defined once: (legend label, meaning). The legend, the tooltips and "How it works" use these.
STATES: dict[Position, tuple[str, str]] = {
    Position.KNOWN: ("known", "your text around the gap, clamped: the model can only predict its own token"),
    Position.SEED: ("edit seed", "an <EDIT>'s old token in the starting canvas (strength decides how many start as noise)"),
    Position.NOISE: ("noise", "the sampler did not keep this pass's guess (shown): the slot is random again next pass"),
    Position.KEPT: ("kept, replaced later", "kept for the next pass, but a later pass replaces it; live, every kept token, as the future is not known yet"),
    Position.ACCEPTED: ("accepted", "final: kept from this pass on and never changed again (on a window's last pass, every slot); coloured by its probability"),
}
BANDS = ("<0.2", "<0.4", "<0.6", "<0.8", "≥0.8")  # accepted tokens' probability in this pass


def _token(piece: str, state: Position, changed: bool, confidence: float, entropy: float, predicted: bool) -> str:
    """One canvas position as a span; whitespace is marked (newlines still break the line)."""
    classes = ["dg-tok", f"dg-{state.value}"]
    if state is Position.ACCEPTED:
        classes.append(f"dg-c{_band(confidence)}")
    if changed:
        classes.append("dg-changed")
    if piece == NULL_TOKEN:
        classes.append("dg-null")
    if not piece:
        classes.append("dg-cont")
    numbers = f"probability {confidence:.2f} · entropy {entropy:.2f} nats" if predicted else "no prediction yet"
    text = repr(piece) if piece else "a byte that completes the character before it"
    title = f"{text} · {STATES[state][0]}: {STATES[state][1]} · {numbers}"
    return f'<span class="{" ".join(classes)}" title="{escape(title)}">{visible(piece)}</span>'

WHITESPACE = {" ": "·", "\t": "→\t", "\n": "↵\n"}  # marks drawn over spaces, tabs and newlines in the canvas
# C0 control characters by their ASCII names (tab and newline are marked as whitespace), as ⟨DC3⟩: the brackets of a
# byte that forms no character (⟨e2⟩), so everything that is not a glyph reads the same way
CONTROLS = dict(enumerate(
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US".split()
)) | {0x7F: "DEL"}
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}  # control, format, surrogate, private-use, unassigned: no glyph to draw


def _char(ch: str) -> str:
    if ch in WHITESPACE:
        return f'<span class="dg-ws">{WHITESPACE[ch]}</span>'
    if unicodedata.category(ch) in INVISIBLE:
        name = CONTROLS.get(ord(ch), f"U+{ord(ch):04X}")
        return f'<span class="dg-ctl">⟨{name}⟩</span>'
    return escape(ch)


def visible(piece: str) -> str:
    """A piece as HTML with its whitespace marked and characters without a glyph named (⟨DC3⟩, ⟨U+200B⟩), so every
    position can be seen and none draws as an empty box."""
    return "".join(map(_char, piece))


def canvas(step: TracePass, caption: str) -> str:
    """The canvas at one pass, each position coloured by its state (`STATES`), with the legend."""
    tokens = "".join(
        _token(piece, state, changed, conf, ent, step.step > 0)
        for piece, state, changed, conf, ent in zip(step.pieces, step.state, step.changed, step.confidence, step.entropy)
        if state is not Position.OUTSIDE
    )
    slots = sum(s.free for s in step.state)
    if step.step == 0:
        summary = f"{counted(slots, 'gap slot')} before any prediction"
    else:
        filler = sum(s is Position.ACCEPTED and piece == NULL_TOKEN for piece, s in zip(step.pieces, step.state))
        held = f" ({counted(step.accepted - filler, 'token')}, {filler} filler)" if filler else ""
        summary = f"{step.accepted} of {counted(slots, 'slot')} accepted{held} · {step.kept} kept · mean entropy {step.mean_entropy:.2f} nats"
    return (
        f'<div class="dg-canvas-box"><div class="dg-caption"><b>{escape(caption)}</b> · {summary}</div>'
        f'<pre class="dg-canvas" data-window="{step.window}" data-step="{step.step}">{tokens}</pre>{LEGEND}</div>'
    )


def _legend_item(state: Position, extra: str = "", label: str = "") -> str:
    name, meaning = STATES[state]
    return f'<span class="dg-tok dg-{state.value}{extra}" title="{escape(meaning)}">{escape(label or name)}</span>'


LEGEND = (
    '<div class="dg-legend">'
    + "".join(_legend_item(state) for state in STATES if state is not Position.ACCEPTED)
    + "".join(_legend_item(Position.ACCEPTED, f" dg-c{b}", f"accepted {label}") for b, label in enumerate(BANDS))
    + '<span class="dg-tok dg-changed" title="the draft token differs from the previous pass">changed this pass</span>'
    f'<span class="dg-tok dg-null" title="the filler: this slot holds nothing, so the gap shrinks">{escape(NULL_TOKEN)}</span>'
    '<span class="dg-legend-note">hover a token or a label for its meaning</span>'
    "</div>"
)


def states_markdown() -> str:
    """The canvas states for "How it works", from the same definitions as the legend."""
    rows = "".join(f"\n- **{name}**: {escape(meaning)}" for name, meaning in STATES.values())
    return f"\n**What the canvas shows.** Each position, after each pass, is in one of these states:{rows}\n"


def trace_caption(trace: list[TracePass], position: int) -> str:
    """'Pass 5 of 12' at a pass slider position (`pass_positions`); with several windows also the window and its own
    pass: 'pass 17 of 51 · window 2 of 4, its pass 4 of 13'."""
    positions = pass_positions(trace)
    step = trace[positions[position]]
    head = f"pass {position} of {len(positions) - 1}"
    if step.step == 0:
        return head + " (starting canvas)"
    windows = trace[-1].window + 1
    if windows == 1:
        return head
    last = max(p.step for p in trace if p.window == step.window)
    return f"{head} · window {step.window + 1} of {windows}, its pass {step.step} of {last}"


def live_caption(step: TracePass) -> str:
    """The caption of a pass shown while the fill runs."""
    return f"Live · window {step.window + 1} · pass {step.step} (which kept tokens are final shows once the window ends)"


def _offsets(text: str) -> list[int]:
    """Character offset where each line starts (index 0 = line 1)."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _issue_span(issue: ParseIssue, starts: list[int], size: int) -> tuple[int, int]:
    def at(line: int, column: int) -> int:
        return min(size, starts[min(line, len(starts)) - 1] + column - 1)

    return at(issue.line, issue.column), at(issue.end_line, issue.end_column)


def _touches(span: tuple[int, int], issue: tuple[int, int]) -> bool:
    (s, e), (s2, e2) = span, issue
    return s2 < e and s < e2 if s2 < e2 else s <= s2 <= e


def filled_code(text: str, spans: list[tuple[int, int]], report: ParseReport) -> str:
    """The filled file with line numbers; fills highlighted (red when a parse issue touches them), issues underlined."""
    starts = _offsets(text)
    issue_spans = [_issue_span(i, starts, len(text)) for i in report.issues]
    bad = [any(_touches(span, issue) for issue in issue_spans) for span in spans]
    fill_at: list[int | None] = [None] * len(text)
    for k, (s, e) in enumerate(spans):
        fill_at[s:e] = [k] * (e - s)
    err_at = [False] * len(text)
    for s, e in issue_spans:
        err_at[s:e] = [True] * (e - s)
    points: dict[int, list[str]] = {}  # zero-width things: missing tokens, empty fills
    for s, e in issue_spans:
        if s == e:
            points.setdefault(s, []).append('<span class="dg-missing" title="a token is missing here">‸</span>')
    for k, (s, e) in enumerate(spans):
        if s == e:
            points.setdefault(s, []).append(f'<span class="dg-fill dg-fill-empty" title="fill {k + 1} is empty">∅</span>')
    lines: list[list[str]] = [[]]
    i = 0
    while i <= len(text):
        lines[-1] += points.get(i, [])
        if i == len(text):
            break
        if text[i] == "\n":
            lines.append([])
            i += 1
            continue
        j = i + 1
        while j < len(text) and text[j] != "\n" and j not in points and (fill_at[j], err_at[j]) == (fill_at[i], err_at[i]):
            j += 1
        lines[-1].append(_run(text[i:j], fill_at[i], bad, err_at[i]))
        i = j
    rows = "\n".join(f'<span class="dg-ln">{n}</span>{"".join(parts)}' for n, parts in enumerate(lines, 1))
    return f'<pre class="dg-code">{rows}</pre>'


def _run(part: str, fill: int | None, bad: list[bool], in_issue: bool) -> str:
    """A stretch of one line that is all in the same fill (or none) and issue state."""
    classes = []
    if fill is not None:
        classes.append("dg-fill dg-fill-bad" if bad[fill] else "dg-fill")
    if in_issue:
        classes.append("dg-err")
    if not classes:
        return escape(part)
    title = f' title="fill {fill + 1}{" (touches a parse error)" if bad[fill] else ""}"' if fill is not None else ' title="parse error"'
    return f'<span class="{" ".join(classes)}"{title}>{escape(part)}</span>'


def badge(report: ParseReport) -> str:
    """Parses / new errors / errors already in the input / not checked. New errors are counted as the candidate
    list counts them (`syntax.new_error_count`: the errors at a fill, by location, for tree-sitter and CPython
    alike, or the growth in count when larger); the rest were in the input, so the two numbers never overlap."""
    old = 0
    if not report.checked:
        kind, text = "plain", f"Not checked: {report.language} has no grammar"
    elif report.parses:
        kind, text = "ok", f"✓ Parses as {report.language}"
    elif report.new_errors:
        count = new_error_count(report)
        old = len(report.issues) - count
        kind, text = "bad", f"✗ {counted(count, 'new parse error')} ({report.language})"
    else:
        kind, text = "warn", f"⚠ {counted(len(report.issues), 'parse error')} already in the input, none new"
    before = f' <span class="dg-before">· {old} more already in the input</span>' if old > 0 else ""
    covers = f'<span class="dg-covers">{escape(report.checked_by)}</span>' if report.checked else ""
    return f'<div class="dg-badge dg-badge-{kind}">{escape(text)}{before}</div>{covers}'


def issues(report: ParseReport) -> str:
    """The parse issues as a table with line and column; issues inside a fill are marked."""
    if not report.issues:
        return ""
    rows = "".join(
        f'<tr class="{"dg-in-fill" if i.in_fill else ""}"><td>{i.line}</td><td>{i.column}</td><td>{escape(i.kind)}</td>'
        f"<td><code>{escape(i.text)}</code></td><td>{'in a fill' if i.in_fill else 'outside the fills'}</td></tr>"
        for i in report.issues
    )
    return f'<table class="dg-issues"><thead><tr><th>line</th><th>column</th><th>kind</th><th>text</th><th>where</th></tr></thead><tbody>{rows}</tbody></table>'


def stats(values: FillStats, notes: list[str]) -> str:
    """Speed figures as chips, then the engine's notes; with no pass (an <EDIT> at strength 0) no speed at all."""
    chips = [(counted(0, "pass", "passes"), "nothing was denoised: an <EDIT> at strength 0 keeps its text")] if not values.passes else [
        (f"{values.seconds:.2f} s", "wall time of the fill (all candidates ran as one batch)"),
        (counted(values.passes, "pass", "passes"), "this candidate's decoder passes over all windows: the passes the slider steps through"),
        (f"{rate(values.tokens_per_second)} tokens/s", "tokens in this candidate's fills per second of the fill"),
        (f"{values.tokens_per_pass:.2f} tokens/pass", "its tokens divided by its passes: a left-to-right model gets at most 1"),
        (counted(values.tokens, "token"), "gap slots of this candidate that hold a token; slots holding the filler are not tokens"),
    ]
    if values.windows > 1:
        chips.append((counted(values.windows, "window"), "canvases run left to right"))
    html = "".join(f'<span class="dg-chip" title="{escape(t)}">{escape(c)}</span>' for c, t in chips)
    notes_html = "".join(f'<li>{escape(n)}</li>' for n in notes)
    return f'<div class="dg-stats">{html}</div>' + (f'<ul class="dg-notes">{notes_html}</ul>' if notes else "")


def candidate_label(result: FillResult, index: int) -> str:
    """'#1 · parses, confidence 0.83 · slots 16' for the candidate picker."""
    c = result.candidates[index]
    if not c.passes:  # nothing was denoised, so there is no confidence to give
        return f"#{index + 1} · the <EDIT> text kept as it was (strength 0)"
    return f"#{index + 1} · {c.rank_reason} · slots {', '.join(map(str, c.slots))}"


LANGUAGE_NAMES = {"python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "tsx": "TSX", "c": "C",
                  "cpp": "C++", "go": "Go", "rust": "Rust", "java": "Java", TEXT: "prose (text, not parsed)"}


def detected(language: str | None, auto: bool) -> str:
    """What language *auto* takes the editor's text as, with a button that opens the Language menu (the page's
    script); nothing when a language is chosen in the menu."""
    if not auto:
        return ""
    change = '<button type="button" class="dg-change" aria-label="change the language">change</button>'
    if language is None:
        return f'<div class="dg-detected" role="status">Language: not recognised yet · {change}</div>'
    name = LANGUAGE_NAMES.get(language, language)
    return f'<div class="dg-detected" role="status">Detected: <b>{escape(name)}</b> · {change}</div>'


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value`: an axis top that reads well (0.004 -> 0.005)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value * (1 - 1e-9))


def plot(trace: list[TracePass], current: int, width: int = 420, height: int = 190) -> str:
    """Accepted slots and mean entropy per pass as an inline SVG, with the slider's position (`pass_positions`)
    marked. The x axis is the slider's: pass 0 (the starting canvas) to the last pass.

    A starting canvas has no prediction yet, so its entropy is left out."""
    if not trace:
        return ""
    left, right, top, bottom = 34, 46, 30, 34
    w, h = width - left - right, height - top - bottom
    positions = pass_positions(trace)
    shown = [trace[i] for i in positions]
    n = max(len(positions) - 1, 1)
    top_accepted = max(max(p.accepted for p in shown), 1)
    top_entropy = nice_ceiling(max(p.mean_entropy for p in shown))

    def x(k: int) -> float:
        return left + w * k / n

    def y(value: float, scale: float) -> float:
        return top + h - h * value / scale

    windows: dict[int, list[int]] = {}
    for k, p in enumerate(shown):
        windows.setdefault(p.window, []).append(k)
    lines = []
    for ks in windows.values():
        acc = " ".join(f"{x(k):.1f},{y(shown[k].accepted, top_accepted):.1f}" for k in ks)
        ent = " ".join(f"{x(k):.1f},{y(shown[k].mean_entropy, top_entropy):.1f}" for k in ks if shown[k].step)
        lines.append(f'<polyline class="dg-plot-acc-line" points="{acc}"/><polyline class="dg-plot-ent-line" points="{ent}"/>')
    starts = "".join(f'<line class="dg-plot-window" x1="{x(k[0] - 0.5):.1f}" x2="{x(k[0] - 0.5):.1f}" y1="{top}" y2="{top + h}"/>' for k in list(windows.values())[1:])
    marker = f'<line class="dg-plot-now" x1="{x(current):.1f}" x2="{x(current):.1f}" y1="{top}" y2="{top + h}"/>'
    axes = (
        f'<line class="dg-plot-axis" x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}"/>'
        f'<text class="dg-plot-acc" x="{left - 4}" y="{top + 8}" text-anchor="end">{top_accepted}</text>'
        f'<text class="dg-plot-acc" x="{left - 4}" y="{top + h}" text-anchor="end">0</text>'
        f'<text class="dg-plot-ent" x="{left + w + 4}" y="{top + 8}">{top_entropy:g}</text>'
        f'<text class="dg-plot-ent" x="{left + w + 4}" y="{top + h}">0</text>'
        f'<text class="dg-plot-tick" x="{left}" y="{top + h + 12}" text-anchor="middle">0</text>'
        f'<text class="dg-plot-tick dg-plot-last" x="{left + w}" y="{top + h + 12}" text-anchor="middle">{len(positions) - 1}</text>'
        f'<text class="dg-plot-label" x="{left + w / 2:.0f}" y="{height - 6}" text-anchor="middle">pass (windows left to right, dashed lines between)</text>'
        f'<text class="dg-plot-acc" x="{left}" y="14">■ accepted slots</text>'
        f'<text class="dg-plot-ent" x="{left + w}" y="14" text-anchor="end">■ mean entropy of the gap (nats)</text>'
    )
    return (
        f'<svg class="dg-plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="accepted tokens and mean entropy per pass">{axes}{starts}{"".join(lines)}{marker}</svg>'
    )
