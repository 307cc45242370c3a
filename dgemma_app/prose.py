"""The "auto" language as a name only, for callers that show no detection details (the page's editor mode).

Detection itself, with its scores and reason, is `syntax.detect_language` (`detect`).
"""
from __future__ import annotations

from .detect import detect_language


def guess_language(text: str) -> str | None:
    """The "auto" choice: a language, text for prose, or None when nothing fits."""
    return detect_language(text).language
