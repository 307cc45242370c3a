"""Regenerate the README's screenshots on purpose (tests never write into the repository).

    python -m bench.screenshots          # runs tests/test_browser.py with --screenshots docs/screenshots

Needs Debian's Chromium at /usr/bin/chromium, as the browser tests do.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    return pytest.main([str(ROOT / "tests" / "test_browser.py"), "-q", "--screenshots", str(ROOT / "docs" / "screenshots")])


if __name__ == "__main__":
    sys.exit(main())
