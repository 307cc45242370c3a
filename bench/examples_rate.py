"""How often the default model gets each of the app's examples right, over seeds: the rate the examples are
chosen by (`python -m bench.examples_rate --seeds 10`). Prints one row per example and the distinct fills seen.

"Right" is defined per example below, written before looking at any fill: the fills a programmer would accept
(trailing whitespace ignored), or for the edit, a rewrite that still compiles and keeps `total` defined.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from bench.common import base_parser, load_engine
from dgemma_app.eval import compiles, normalize
from dgemma_app.ui.examples import EXAMPLES

ACCEPTED: dict[str, list[tuple[str, ...]]] = {
    "Python: a function body": [("return sum(values) / len(values)",)],
    "JavaScript": [("low",)],
    "Go": [("total += v",), ("total = total + v",)],
    "Two gaps at once": [("self.items.append(item)", "self.items.pop()")],
    "Teaching: watch a gap settle": [("a + b",)],
}


def right(label: str, fills: list[str], text: str, language: str) -> bool | None:
    """Whether a fill is right for the example; None where only a reader can judge (prose)."""
    if label == "An edit (rewrite a region)":
        return compiles(text) and "total" in fills[0]
    if label not in ACCEPTED:
        return None
    return tuple(normalize(f) for f in fills) in ACCEPTED[label]


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    engine, settings, _ = load_engine(args)
    print(f"| example | right of {args.seeds} | passes (mean) | fills seen (count) |\n|---|---|---|---|")
    for label, language, text in EXAMPLES:
        verdicts, fills, passes = [], Counter(), []
        for seed in range(args.seeds):
            result = engine.fill(text, language, replace(settings, seed=seed))
            verdicts.append(right(label, result.fills, result.text, language))
            fills[" | ".join(repr(f) for f in result.fills)] += 1
            passes.append(result.stats.passes)
        score = "judged by eye" if verdicts[0] is None else str(sum(verdicts))
        seen = "; ".join(f"{f} ({n})" for f, n in fills.most_common(4))
        print(f"| {label} | {score} | {sum(passes) / len(passes):.1f} | {seen} |")


if __name__ == "__main__":
    main()
