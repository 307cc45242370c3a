"""The installed tree-sitter grammars: language names, one cached parser per thread, and a tree's error nodes.

Shared by the parse checks (`syntax`) and language detection (`detect`); grammars load on first use, so
importing this module is cheap.
"""
from __future__ import annotations

import importlib
import threading
from typing import Iterable

import tree_sitter

TEXT = "text"

# name -> (grammar module, function returning the language pointer); `text` has no grammar.
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

LANGUAGES: tuple[str, ...] = (*_GRAMMARS, TEXT)

_local = threading.local()


def parser(language: str) -> tree_sitter.Parser:
    """A cached parser for `language`; per thread because a Parser is not safe to share."""
    if not hasattr(_local, "parsers"):
        _local.parsers = {}
    cache: dict[str, tree_sitter.Parser] = _local.parsers
    if language not in cache:
        module_name, func_name = _GRAMMARS[language]
        grammar = getattr(importlib.import_module(module_name), func_name)()
        cache[language] = tree_sitter.Parser(tree_sitter.Language(grammar))
    return cache[language]


def error_nodes(root: tree_sitter.Node) -> Iterable[tree_sitter.Node]:
    """ERROR and MISSING nodes in document order, not descending into ERRORs (their insides are noise)
    nor into subtrees without errors (so a clean tree costs one step)."""
    cursor = root.walk()
    while True:
        node = cursor.node
        if node.is_error or node.is_missing:
            yield node
        elif node.has_error and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return
