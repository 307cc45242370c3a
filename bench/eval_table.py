"""One Markdown table from `python -m dgemma_app.eval --out` files.

    python -m bench.eval_table runs/bench/eval-*.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import table


def rows(path: Path) -> list[list]:
    report = json.loads(path.read_text())
    gap = "true length" if report["gap_length"] == "true" else "engine (<FILL>)"
    return [[s["name"], gap, s["tasks"], None if s["pass_at_1"] is None else 100 * s["pass_at_1"], 100 * s["exact_match"],
             100 * s["parse_rate"], s["seconds_per_task"], s["seconds_p50"], s["tokens_per_pass"], s["timeouts"]]
            for s in report["sets"].values()]


def main() -> None:
    headers = ["set", "gap length", "tasks", "pass@1 %", "exact %", "parses %", "s/task", "p50 s", "tokens/pass", "timeouts"]
    print(table(headers, [r for name in sys.argv[1:] for r in rows(Path(name))]))


if __name__ == "__main__":
    main()
