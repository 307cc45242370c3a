"""Example inputs one click away, and the "How it works" text for newcomers."""
from __future__ import annotations

TEACHING_EXAMPLE = "Teaching: watch a gap settle"  # the example that turns teaching mode on

FAILS_ON_PURPOSE = "Fails on purpose: a whole function body"
# (label, language, text). Each one the default model fills acceptably in at least 7 of 10 seeds, chosen from many
# candidate texts by that measured rate (`python -m bench.examples_rate --pool`; the rule and table in BENCHMARKS.md),
# except FAILS_ON_PURPOSE: a small model writes a single line, not a body.
EXAMPLES: list[tuple[str, str, str]] = [
    (
        "Python: return the result",
        "python",
        "def double_all(numbers):\n    result = []\n    for n in numbers:\n        result.append(n * 2)\n    return <FILL>\n",
    ),
    ("JavaScript", "javascript", "function add(a, b) {\n  return a + <FILL>\n}\n\nmodule.exports = { add };\n"),
    ("Go", "go", "package main\n\nfunc square(x int) int {\n\treturn x * <FILL>\n}\n"),
    (
        "Two gaps at once (Go)",
        "go",
        "package main\n\nfunc square(x int) int {\n\treturn x * <FILL>\n}\n\nfunc double(x int) int {\n\treturn x + x\n}\n\n"
        "func cube(x int) int {\n\treturn x * x * <FILL>\n}\n",
    ),
    (
        "An edit: fix a typo",
        "python",
        "def double_all(numbers):\n    result = []\n    for n in numbers:\n        result.append(n * 2)\n    return <EDIT>reslt</EDIT>\n",
    ),
    (
        TEACHING_EXAMPLE,
        "python",
        "def total(prices):\n    result = 0\n    for price in prices:\n        result += price\n    return <FILL>\n\n\n"
        "# Teaching mode is on: press Fill, then Play under the canvas.\n# Grey noise settles into tokens, the surest first.\n",
    ),
    (
        FAILS_ON_PURPOSE,
        "python",
        'def mean(values):\n    """Return the average of a list of numbers."""\n    <FILL>\n\n\nprint(mean([1, 2, 3, 4]))\n',
    ),
]

HOW_IT_WORKS = """
**Left to right vs. all at once.** A usual language model writes one token after another and
only ever sees what came before. A *diffusion* model starts from a draft made of random tokens
and improves **every position at once**, pass after pass, until the draft settles.

**The canvas.** The model edits a fixed-size window of tokens, the *canvas*. Everything before the
window is read once by the encoder. Inside the canvas, the code you wrote around a gap stays fixed
(*clamped*: shown dim), and the gap's slots start as **noise** (grey): random tokens.

**Passes.** In each pass the model predicts a token for every slot and says how sure it is (the
*entropy* of its guess: 0 = certain). The sampler **keeps** the surest predictions, as many as fit under
the *entropy bound*, and turns the rest back into fresh noise for the next pass. A kept token goes back
into the model, which may still replace it later; a token is **accepted** once it is kept and never
changes again, so accepted tokens only grow from pass to pass. When the draft stops changing and is
confident, the fill is done — often in far fewer passes than it has tokens (see *tokens/pass*).
Teaching mode slows the sampler down so you can watch this; **Play** replays the passes.
The *Pass* slider, the captions, the plot and the stats count passes one way: position 0 is the starting
canvas, and each later position is one pass of the model, window after window (a later window's starting
canvas is not a pass), so the slider's last position is the pass count in the stats.

**Confidence.** A candidate's *confidence* is the geometric mean of its fill tokens' probabilities,
each taken at the pass where that token was accepted (filler left out): how sure the model was when it
committed, not at the end, when every token is near-certain.

**Why both sides matter.** Because the canvas holds the code *after* the gap too, the model picks
tokens that fit what follows: a closing bracket, a variable used later, the indentation. A
left-to-right model would have to guess that.

**Gap lengths.** Each position of a gap is a *slot*. `<FILL>` gets a slot budget; the embedded model can
put a `<null>` filler (shown faintly) in slots it does not need, so the gap shrinks to fit. A slot ends
holding a token or the filler: everywhere on the page, *tokens* counts only the slots that hold a token. `<FILL:n>` caps a gap at *n* tokens
(*Exact length* makes it exactly *n*, as for a model without a filler), and `<EDIT>old</EDIT>` seeds
the slots with the old code and re-noises a share of it (*edit strength*). A gap at the end of a line
(*One-line gaps*, on by default) may hold filler only after the model writes a line break: that break
ends the fill, and it and the slots after it turn to filler in the same pass, so the model writes the
rest of the line instead of shrinking the gap to a token or two. A gap of a whole line (`<FILL>` at the
start of a line, the next line's indentation right after it) is one too, and its fill ends with its own
line break. Turn it off to let a fill run over several lines.

**Compare with left to right.** Press *Compare* under the player to fill the same gap with the
diffusion sampler and with the left-to-right baseline (one token per pass, as an autoregressive model
would, stopping at the filler, or at the line break of a one-line gap, as it would stop at its end token), one
canvas above the other on one slider: with long gaps (*Exact length*) the diffusion sampler needs several times fewer passes.

**The check.** tree-sitter parses the filled file: the badge says whether it parses, and which
errors are new (made by a fill) or were already in your input. With several candidates the one
that parses and is most confident comes first.
"""
