"""Re-record tests/golden/fills.json on purpose: `python -m tests.golden.generate` (builds the tiny model in a temp folder)."""
from __future__ import annotations

import io
import json
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

from tests.test_golden import CASES, GOLDEN, run_case


class _Capture:
    """What run_case needs of pytest's capsys: the stdout printed since the last call."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def readouterr(self):
        out = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return type("Captured", (), {"out": out})()


def main() -> None:
    from dgemma_app.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_model(Path(folder) / "tiny")
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            golden = {name: run_case(model, Path(folder), name, _Capture(buffer)) for name in CASES}
    GOLDEN.write_text(json.dumps(golden, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(golden)} cases)")


if __name__ == "__main__":
    main()
