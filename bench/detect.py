"""Language detection on the labelled set: per-language accuracy, the misses, and milliseconds per call.

    python -m bench.detect [--repeat 20] [--files LANG=GLOB ...]

The set (`dgemma_app/evalsets/detect.txt`) holds snippets in the eight detected languages and prose, written
before detection was tuned. Speed is measured on a 4 KB input (snippets of the set joined), the most detection
reads twice over (it judges the first `detect.HEAD` characters); timings depend on load, the accuracy does not.
`--files python='src/**/*.py'` also detects 25 files (a fixed sample) of a language found on the machine: whole
real files, whose first characters are often a licence comment.
"""
from __future__ import annotations

import argparse
import glob
import random
import time
from collections import Counter

from dgemma_app.detect import detect_language
from dgemma_app.evalsets import LabelledText, read_labelled

SIZE = 4096  # characters of the timed inputs


def accuracy(cases: list[LabelledText]) -> tuple[dict[str, tuple[int, int]], list[tuple[LabelledText, str | None]]]:
    """Per language (right, total), and the cases detected wrongly with what was detected."""
    right, total, misses = Counter(), Counter(), []
    for case in cases:
        got = detect_language(case.text).language
        total[case.language] += 1
        right[case.language] += got == case.language
        if got != case.language:
            misses.append((case, got))
    return {lang: (right[lang], total[lang]) for lang in total}, misses


def ms_per_call(text: str, repeat: int) -> float:
    detect_language(text)  # grammars load on first use
    start = time.perf_counter()
    for _ in range(repeat):
        detect_language(text)
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="calls timed on the 4 KB input")
    parser.add_argument("--files", nargs="*", default=[], metavar="LANG=GLOB", help="also detect 25 files per language")
    args = parser.parse_args()
    cases = read_labelled()
    table, misses = accuracy(cases)
    print("| language | right | snippets | accuracy |\n|---|---:|---:|---:|")
    for lang, (ok, n) in table.items():
        print(f"| {lang} | {ok} | {n} | {ok / n:.0%} |")
    ok, n = sum(r for r, _ in table.values()), sum(t for _, t in table.values())
    print(f"| **all** | **{ok}** | **{n}** | **{ok / n:.1%}** |")
    for case, got in misses:
        print(f"miss: {case.case_id} ({case.language}) detected as {got}: {detect_language(case.text).reason}")
    for lang in ("python", "text"):
        one = "\n".join(c.text for c in cases if c.language == lang)
        big = (one * (SIZE // len(one) + 1))[:SIZE]
        print(f"{ms_per_call(big, args.repeat):.1f} ms per call on {SIZE} characters of {lang}")
    for spec in args.files:
        lang, pattern = spec.split("=", 1)
        files = sorted(glob.glob(pattern, recursive=True))
        sample = random.Random(0).sample(files, min(25, len(files)))
        got = Counter(detect_language(open(f, encoding="utf-8", errors="replace").read()).language for f in sample)
        print(f"{lang}: {got[lang]} of {len(sample)} files right ({pattern}); detected {dict(got.most_common())}")


if __name__ == "__main__":
    main()
