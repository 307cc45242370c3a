"""How often the default model fills each of the app's examples acceptably, over seeds: the rate the examples are
chosen by. `python -m bench.examples_rate --seeds 10` rates the page's examples; `--pool` rates every candidate
text below (the page's examples were picked from it by this rate). Prints one row per example and the fills seen.

"Acceptable" is a checkable rule, written with each text before looking at any fill: the filled text parses
(tree-sitter; prose is not checked) and the fills are one of the accepted answers listed with it (trailing
whitespace ignored) — or, where a test is given, the filled program passes it (run in the sandbox, as the eval
runs HumanEval), which is how an edit is judged: any rewrite that keeps the function right.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from bench.common import base_parser, load_engine
from dgemma_app.eval import normalize
from dgemma_app.sandbox import run_program
from dgemma_app.ui.examples import EXAMPLES


@dataclass(frozen=True)
class Candidate:
    """A text an example could show, with what counts as filling it acceptably."""

    label: str
    language: str
    text: str
    accepted: tuple[tuple[str, ...], ...] = ()  # the fills, one tuple per accepted answer
    test: str = ""  # Python appended to the filled program; it must exit cleanly


MEAN_TEST = "assert mean([1, 2, 3, 4]) == 2.5 and mean([5]) == 5"
DOUBLE_TEST = "assert double_all([1, 2]) == [2, 4]"
TEACH = "# Teaching mode is on: press Fill, then Play under the canvas.\n# Grey noise settles into tokens, the surest first.\n"
TOTAL = "def total(prices):\n    result = 0\n    for price in prices:\n        result += price\n    return <FILL>\n"
DOUBLE = "def double_all(numbers):\n    result = []\n    for n in numbers:\n        result.append(n * 2)\n    return "
MEAN = 'def mean(values):\n    """Return the average of a list of numbers."""\n    <FILL>\n\n\nprint(mean([1, 2, 3, 4]))\n'
GO_SUM = ('package main\n\nimport "fmt"\n\nfunc sum(values []int) int {\n\ttotal := 0\n\tfor _, v := range values {\n\t\t{}\n\t}\n'
          "\treturn total\n}\n\nfunc main() {\n\tfmt.Println(sum([]int{1, 2, 3}))\n}\n")
GO_SQUARE = "func square(x int) int {\n\treturn x * <FILL>\n}\n"
POOL: list[Candidate] = [  # every text tried, the page's first; a label is the page's where the page shows it
    Candidate("Python: return the result", "python", DOUBLE + "<FILL>\n", (("result",),)),
    Candidate("JavaScript", "javascript", "function add(a, b) {\n  return a + <FILL>\n}\n\nmodule.exports = { add };\n", (("b;",), ("b",))),
    Candidate("Go", "go", "package main\n\nfunc square(x int) int {\n\treturn x * <FILL>\n}\n", (("x",),)),
    Candidate("Two gaps at once (Go)", "go", "package main\n\n" + GO_SQUARE + "\nfunc double(x int) int {\n\treturn x + x\n}\n\n"
              "func cube(x int) int {\n\treturn x * x * <FILL>\n}\n", (("x", "x"),)),
    Candidate("An edit: fix a typo", "python", DOUBLE + "<EDIT>reslt</EDIT>\n", (("result",),), DOUBLE_TEST),
    Candidate("Teaching: watch a gap settle", "python", TOTAL + "\n\n" + TEACH, (("result",),)),
    Candidate("Fails on purpose: a whole function body", "python", MEAN, (("return sum(values) / len(values)",),), MEAN_TEST),
    Candidate("Python: a running total", "python", TOTAL, (("result",),)),
    Candidate("Python: count the items", "python", "def count(items):\n    return len(<FILL>)\n", (("items",),)),
    Candidate("Python: the other side", "python", "def add(a, b):\n    return a + <FILL>\n", (("b",),)),
    Candidate("Python: square", "python", "def square(x):\n    return x * <FILL>\n", (("x",),)),
    Candidate("Python: is even", "python", "def is_even(n):\n    return n % 2 == <FILL>\n", (("0",),)),
    Candidate("Python: is empty", "python", "def is_empty(items):\n    return len(items) == <FILL>\n", (("0",),)),
    Candidate("Python: is positive", "python", "def is_positive(n):\n    return n > <FILL>\n", (("0",),)),
    Candidate("Python: first item", "python", "def first(items):\n    return items[<FILL>]\n", (("0",),)),
    Candidate("Python: greet", "python", 'def greet(name):\n    return "Hello, " + <FILL>\n', (("name",),)),
    Candidate("Python: print each", "python", "for i in range(10):\n    print(<FILL>)\n", (("i",),)),
    Candidate("Python: sum a list", "python", "numbers = [1, 2, 3]\ntotal = sum(<FILL>)\nprint(total)\n", (("numbers",),)),
    Candidate("Python: a constructor", "python",
              "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = <FILL>\n", (("y",),)),
    Candidate("Python: a getter", "python",
              "class Person:\n    def __init__(self, name):\n        self.name = name\n\n    def get_name(self):\n        return self.<FILL>\n",
              (("name",),)),
    Candidate("Python: an exception", "python", "try:\n    value = int(text)\nexcept <FILL>:\n    value = 0\n",
              (("ValueError",), ("(ValueError, TypeError)",), ("Exception",))),
    Candidate("Python: loop exit", "python", "while True:\n    line = input()\n    if not line:\n        <FILL>\n    print(line)\n",
              (("break",),)),
    Candidate("Python: a flag", "python", "def is_positive(n):\n    if n > 0:\n        return True\n    return <FILL>\n", (("False",),)),
    Candidate("Python: self", "python", "class Counter:\n    def __init__(<FILL>\n        self.count = 0\n", (("self):",),)),
    Candidate("Two gaps: a constructor", "python",
              "class Point:\n    def __init__(self, x, y):\n        self.x = <FILL>\n        self.y = <FILL>\n", (("x", "y"),)),
    Candidate("Two gaps: add and subtract", "python",
              "def add(a, b):\n    return a + <FILL>\n\n\ndef sub(a, b):\n    return a - <FILL>\n", (("b", "b"),)),
    Candidate("Two gaps: two results", "python",
              "def add(a, b):\n    result = a + b\n    return <FILL>\n\n\ndef mul(a, b):\n    result = a * b\n    return <FILL>\n",
              (("result", "result"),)),
    Candidate("Two gaps: two getters", "python",
              "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n    def get_x(self):\n        return self.<FILL>\n\n"
              "    def get_y(self):\n        return self.<FILL>\n", (("x", "y"),)),
    Candidate("Two gaps: total and count", "python", TOTAL + "\n\ndef count(items):\n    return len(<FILL>)\n", (("result", "items"),)),
    Candidate("Two gaps: in one loop", "python",
              "def total(prices):\n    result = 0\n    for price in prices:\n        result += <FILL>\n    return <FILL>\n", (("price", "result"),)),
    Candidate("Two gaps: the loop and the result", "python",
              "def total(prices):\n    result = 0\n    for price in <FILL>:\n        result += price\n    return <FILL>\n", (("prices", "result"),)),
    Candidate("Two gaps: two counts", "python",
              "def count(items):\n    return len(<FILL>)\n\n\ndef count_words(words):\n    return len(<FILL>)\n", (("items", "words"),)),
    Candidate("Two gaps: an edit and a fill", "python",
              TOTAL.replace("<FILL>", "<EDIT>reslt</EDIT>") + "\n\ndef count(items):\n    return len(<FILL>)\n", (("result", "items"),)),
    Candidate("Two gaps: a stack", "python",
              'class Stack:\n    """A last-in, first-out stack."""\n\n    def __init__(self):\n        self.items = []\n\n'
              "    def push(self, item):\n        <FILL>\n\n    def pop(self):\n        return <FILL:8>\n",
              (("self.items.append(item)", "self.items.pop()"),)),
    Candidate("Two gaps: Go add and square", "go",
              "package main\n\nfunc add(a, b int) int {\n\treturn a + <FILL>\n}\n\nfunc square(x int) int {\n\treturn x * <FILL>\n}\n", (("b", "x"),)),
    Candidate("Two gaps: JavaScript add and square", "javascript",
              "function add(a, b) {\n  return a + <FILL>\n}\n\nfunction square(x) {\n  return x * <FILL>\n}\n\nmodule.exports = { add, square };\n",
              (("b", "x"), ("b;", "x;"), ("b", "x;"), ("b;", "x"))),
    Candidate("Two gaps: Go square and cube, close", "go", "package main\n\n" + GO_SQUARE + "\nfunc cube(x int) int {\n\treturn x * x * <FILL>\n}\n",
              (("x", "x"),)),
    Candidate("Two gaps: Go square, then add", "go", "package main\n\n" + GO_SQUARE + "\nfunc add(a, b int) int {\n\treturn a + <FILL>\n}\n",
              (("x", "b"),)),
    Candidate("Two gaps: return both results", "python", DOUBLE + "<FILL>\n\n\n" + TOTAL, (("result", "result"),)),
    Candidate("JavaScript: clamp", "javascript",
              "function clamp(value, low, high) {\n  if (value < low) {\n    return <FILL:4>;\n  }\n  return Math.min(value, high);\n}\n\n"
              "module.exports = { clamp };\n", (("low",),)),
    Candidate("JavaScript: square", "javascript", "function square(x) {\n  return x * <FILL>\n}\n\nmodule.exports = { square };\n",
              (("x;",), ("x",))),
    Candidate("JavaScript: is empty", "javascript",
              "function isEmpty(items) {\n  return items.length === <FILL>\n}\n\nmodule.exports = { isEmpty };\n", (("0;",), ("0",))),
    Candidate("JavaScript: return the result", "javascript",
              "function double(x) {\n  const result = x * 2;\n  return <FILL>\n}\n\nmodule.exports = { double };\n", (("result;",), ("result",))),
    Candidate("JavaScript: log each", "javascript",
              "const items = [1, 2, 3];\nfor (const item of items) {\n  console.log(<FILL>);\n}\n", (("item",),)),
    Candidate("Go: add", "go", "package main\n\nfunc add(a int, b int) int {\n\treturn a + <FILL>\n}\n", (("b",),)),
    Candidate("Go: add, short parameters", "go", "package main\n\nfunc add(a, b int) int {\n\treturn a + <FILL>\n}\n", (("b",),)),
    Candidate("Go: return the result", "go", "package main\n\nfunc double(x int) int {\n\tresult := x * 2\n\treturn <FILL>\n}\n",
              (("result",),)),
    Candidate("Go: a loop body", "go", GO_SUM.replace("{}", "<FILL>"), (("total += v",), ("total = total + v",))),
    Candidate("Go: sum", "go", GO_SUM.replace("{}", "total += <FILL>"), (("v",),)),
    Candidate("An edit: keep the result", "python", DOUBLE + "<EDIT>result</EDIT>\n", (("result",),), DOUBLE_TEST),
    Candidate("An edit: a sum", "python", "def add(a, b):\n    return <EDIT>a + b</EDIT>\n", (("a + b",), ("b + a",)),
              "assert add(2, 3) == 5"),
    Candidate("An edit: rewrite a loop", "python",
              "def mean(values):\n    <EDIT>total = 0\n    for v in values:\n        total = total + v</EDIT>\n    return total / len(values)\n",
              test=MEAN_TEST),
    Candidate("Teaching: before the code", "python", TEACH + TOTAL, (("result",),)),
    Candidate("Teaching: add", "python", TEACH + 'def add(a, b):\n    """Return the sum of a and b."""\n    return <FILL:8>\n',
              (("a + b",), ("b + a",))),
    Candidate("Teaching: return the result", "python", TEACH + DOUBLE + "<FILL>\n", (("result",),)),
    Candidate("Teaching: Go", "go", TEACH.replace("#", "//") + "package main\n\nfunc square(x int) int {\n\treturn x * <FILL>\n}\n",
              (("x",),)),
    Candidate("Prose: insert a sentence", "text",
              "A diffusion model writes by refining a whole draft at once. <FILL:24> That is why it can fill the middle of a text: "
              "it reads the words after the gap as well as the words before it.\n"),
    Candidate("Prose: a weekday", "text",
              "The week starts on Monday. After Monday comes Tuesday, then <FILL:3>, then Thursday and Friday.\n", (("Wednesday",),)),
    Candidate("Prose: counting", "text", "Count with me: one, two, three, four, <FILL:2>, six, seven.\n", (("five",),)),
    Candidate("Prose: a rhyme", "text", "Roses are red, violets are <FILL:2>, sugar is sweet, and so are you.\n", (("blue",),)),
    Candidate("Prose: a pangram", "text",
              "The quick brown fox jumps over the lazy <FILL:2>. It is a sentence that uses every letter.\n", (("dog",),)),
    Candidate("Prose: a language", "text",
              "Python is a programming language. You write a program in <FILL:2> and run it with the python command.\n", (("Python",),)),
    Candidate("Prose: hello", "text", "Hello, world! This is my first program. It prints hello, <FILL:2> and then it stops.\n", (("world",),)),
]
BY_TEXT = {c.text: c for c in POOL}


def acceptable(candidate: Candidate, result) -> bool:
    """The rule of the module docstring: parses (where checked), then an accepted answer or a passing test."""
    if result.report.checked and not result.report.parses:
        return False
    if tuple(normalize(f) for f in result.fills) in candidate.accepted:
        return True
    return bool(candidate.test) and run_program(f"{result.text}\n{candidate.test}\n").passed


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--pool", action="store_true", help="rate every candidate text, not only the page's examples")
    args = parser.parse_args()
    engine, settings, _ = load_engine(args)
    rows = POOL if args.pool else [replace(BY_TEXT.get(text, Candidate(label, language, text)), label=label) for label, language, text in EXAMPLES]
    print(f"| example | language | acceptable of {args.seeds} | passes (mean) | fills seen (count) |\n|---|---|---|---|---|")
    for candidate in rows:
        verdicts, fills, passes = [], Counter(), []
        for seed in range(args.seeds):
            result = engine.fill(candidate.text, candidate.language, replace(settings, seed=seed))
            verdicts.append(acceptable(candidate, result))
            fills[" | ".join(repr(f) for f in result.fills)] += 1
            passes.append(result.stats.passes)
        score = str(sum(verdicts)) if candidate.accepted or candidate.test else "no rule (0)"
        seen = "; ".join(f"{f} ({n})" for f, n in fills.most_common(4))
        print(f"| {candidate.label} | {candidate.language} | {score} | {sum(passes) / len(passes):.1f} | {seen} |", flush=True)


if __name__ == "__main__":
    main()
