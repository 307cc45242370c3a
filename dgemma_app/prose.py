"""Telling prose from code, for the "auto" language choice: a paragraph with a gap is a first-class input.

Checked only after every code pattern has failed (`syntax.guess_language`), so code with comments stays code.
"""
from __future__ import annotations

import re

from . import syntax

_MARKERS = re.compile(r"<FILL(?::\d+)?>|</?EDIT>")
_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_SENTENCE_END = re.compile(r"[^\W\d_][.!?…][\"”’)]*(?:\s|$)")
_CODE_CHARS = set("{}[]();=<>#$\\|_`*&^~")
_HEAD = 4000  # characters read: enough to judge, quick on any input


def looks_like_prose(text: str) -> bool:
    """Mostly words, few code symbols, and at least one sentence end: a paragraph, not a program."""
    head = _MARKERS.sub(" ", text[:_HEAD])
    words = len(_WORDS.findall(head))
    symbols = sum(ch in _CODE_CHARS for ch in head)
    return words >= 6 and symbols * 8 <= words and _SENTENCE_END.search(head) is not None


def guess_language(text: str) -> str | None:
    """The "auto" choice: a language whose patterns fit, else text for prose, else None."""
    return syntax.guess_language(text) or (syntax.TEXT if looks_like_prose(text) else None)
