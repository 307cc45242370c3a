"""Which language a pasted text is, for the "auto" choice: every grammar's fit, a prose test, keyword hints.

tree-sitter's error recovery lets many grammars accept much, so a grammar's fit is the share of the text's
tokens that its parse explains: all but the loose tokens in ERROR nodes (a MISSING token costs one). Code is chosen only when a grammar
clearly fits; among grammars that fit about equally (plain C is also C++, most JavaScript also TypeScript)
keyword hints decide, then the order of `CODE` (the smaller language first). Sentences that no grammar
takes are prose. The gap markers are masked first: a marker alone on its line is dropped (an empty line
means nothing in any language), one inside a line becomes an identifier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import tree_sitter

from .grammars import TEXT, error_nodes, parser

# The languages detection chooses from, in tie order; tsx (TypeScript with JSX) is only ever picked by name.
CODE: tuple[str, ...] = ("python", "javascript", "c", "go", "rust", "java", "cpp", "typescript")
# What the reason (and the page) calls each language.
NAMES = {"python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "go": "Go", "rust": "Rust",
         "java": "Java", "c": "C", "cpp": "C++", "tsx": "TSX", TEXT: "prose"}

HEAD = 2000  # characters judged (about 50 lines): enough to tell, and quick on any input (parsed once per grammar)
CLEAR_FIT = 0.9  # a grammar "clearly fits" when at most a tenth of the tokens sit in errors
TIE = 0.03  # grammars this close to the best fit are told apart by hints
MIN_TOKENS = 2  # one token says nothing: "hello" parses as Python, JavaScript and Rust alike

_MARKER_LINE = re.compile(r"^([ \t]*)(?:<FILL(?::\d+)?>|</?EDIT>)[ \t]*$", re.MULTILINE)
_MARKER = re.compile(r"<FILL(?::\d+)?>")
_EDIT_TAG = re.compile(r"</?EDIT>")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\b[^\W\d_]+(?:['’][^\W\d_]+)?\b")  # "x1" is no word
_SENTENCE_END = re.compile(r"[^\W_][.!?…][\"”’)]*(?:\s|$)")
_CODE_SYMBOLS = re.compile(r"([{}\[\]();=<>#$\\|_`*&^~])\1*")  # a run (a Markdown rule "====") counts once

# Keyword hints, only to break ties between grammars that fit about equally.
_HINTS: dict[str, tuple[re.Pattern[str], ...]] = {
    lang: tuple(re.compile(p, re.MULTILINE) for p in patterns)
    for lang, patterns in {
        "python": (r"^[ \t]*(?:async\s+)?(?:def|class)\s+\w+.*:[ \t]*$", r"^[ \t]*(?:from\s+[\w.]+\s+)?import\s+\w[\w.]*(?:\s+as\s+\w+)?[ \t]*$",
                   r"^[ \t]*(?:for|while|if|elif|else|with|try|except)\b.*:[ \t]*$", r"\bprint\(", r"\bself\.", r"\b(?:None|True|False|lambda)\b"),
        "javascript": (r"\bfunction\b", r"^[ \t]*(?:const|let|var)\s+\w+\s*=", r"=>", r"\brequire\(", r"\bconsole\.", r"\bthis\.",
                       r"===", r"\bdocument\.", r"\bconstructor\b", r"\bmodule\.exports\b"),
        "typescript": (r"^[ \t]*(?:export\s+)?(?:interface|type|enum)\s+\w+", r":\s*(?:string|number|boolean|void|any|unknown)\b",
                       r"\b(?:private|public|readonly)\s+\w+\s*[:?]", r"\b(?:const|let)\s+\w+\s*:\s*\w", r"\)\s*:\s*\w+[\w<>\[\]]*\s*(?:=>|\{)",
                       r"^[ \t]*export\s+(?:const|function|class|default)\b"),
        "go": (r"^package\s+\w+", r"^func\s", r":=", r"\bfmt\.", r"\bgo\s+func\b", r"\bdefer\b", r"\brange\b", r"^type\s+\w+\s+(?:struct|interface)\b",
               r"\berr\s*!=\s*nil\b"),
        "rust": (r"\bfn\s+\w+", r"\blet\s+(?:mut\s+)?\w+", r"^[ \t]*impl\b", r"^[ \t]*use\s+\w+::", r"\b\w+!\(", r"&(?:mut\s+)?self\b",
                 r"^[ \t]*#\[", r"\bmatch\s+\w+\s*\{", r"\bVec<|\bOption<|\bResult<"),
        "java": (r"\b(?:public|private|protected)\s+(?:static\s+)?(?:final\s+)?[\w<>\[\]]+\s+\w+\s*[(;=]", r"\bSystem\.out\.", r"^import\s+java",
                 r"\bnew\s+\w+(?:<[^>]*>)?\(", r"^[ \t]*@\w+", r"\brecord\s+\w+\(", r"\bString\b", r"^[ \t]*(?:public\s+)?(?:interface|class)\s+\w+",
                 r"\bcatch\s*\(\w+\s+\w+\)"),
        "c": (r"^[ \t]*#include\s*<\w+\.h>", r"\bprintf\(", r"\b(?:malloc|free|memcpy|strlen)\(", r"\bNULL\b", r"\btypedef\b",
              r"^[ \t]*#define\b", r"\bchar\s*\*", r"\b(?:unsigned|void)\b"),
        "cpp": (r"\bstd::", r"^[ \t]*#include\s*<\w+>", r"\btemplate\s*<", r"\bnamespace\b", r"\b(?:public|private|protected):",
                r"\bauto\b", r"\bvirtual\b", r"\bnullptr\b", r"\bcout\b", r"\bclass\s+\w+"),
    }.items()
}


@dataclass(frozen=True)
class Detection:
    """What "auto" chose: a canonical language ("text" for prose, None when nothing fits), every candidate's
    score in [0, 1] (a grammar's fit, or for "text" how much the text reads as sentences; none for too little
    text), and why, in words."""

    language: str | None
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def masked(text: str) -> str:
    """`text` with its gap markers made neutral for every grammar."""
    text = _MARKER_LINE.sub(r"\1", text)
    return _EDIT_TAG.sub("", _MARKER.sub("x", text))


def judged(text: str) -> str:
    """The part of `text` detection reads: the first HEAD characters, cut at a line end when there is one (no
    grammar sees half a line) and before a block comment or triple-quoted string the cut would leave open (a
    licence comment often is one)."""
    if len(text) <= HEAD:
        return text
    cut = text.rfind("\n", 0, HEAD)
    head = text[: cut if cut > 0 else HEAD]
    if (start := head.rfind("/*")) > head.rfind("*/"):
        head = head[:start]
    for quotes in ('"""', "'''"):
        if head.count(quotes) % 2:
            head = head[: head.rfind(quotes)]
    return head


def _loose_tokens(root: tree_sitter.Node, data: bytes) -> int:
    """Tokens of the tree that no well-formed construct explains: a MISSING token, the leaves an ERROR holds
    directly (what it wraps whole, such as a function the parser resynchronised on, is explained). A loop, not
    recursion: nesting may be as deep as the text is long."""
    loose, stack = 0, [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            loose += 1
        elif node.is_error:
            leaves = [node] if node.child_count == 0 else [c for c in node.children if c.child_count == 0]
            loose += max(1, sum(len(_TOKEN.findall(data[c.start_byte : c.end_byte].decode("utf-8", "replace"))) for c in leaves))
            stack.extend(c for c in node.children if c.child_count)
        elif node.has_error:
            stack.extend(node.children)
    return loose


def grammar_fit(text: str, language: str) -> tuple[float, int]:
    """(share of tokens that `language`'s parse explains, the number of errors): 1.0 parses cleanly."""
    tokens = len(_TOKEN.findall(text))
    if not tokens:
        return 0.0, 0
    data = text.encode("utf-8", "surrogatepass")
    root = parser(language).parse(data).root_node
    return max(0.0, 1.0 - _loose_tokens(root, data) / tokens), sum(1 for _ in error_nodes(root))


def prose_score(text: str) -> float:
    """How much `text` reads as sentences, in [0, 1]: mostly words, few code symbols, sentence ends; 0.5 is the bar."""
    words = len(_WORD.findall(text))
    if words < 3:
        return 0.0
    symbols = len(_CODE_SYMBOLS.findall(text))
    ends = len(_SENTENCE_END.findall(text))
    wordy = min(1.0, words / max(1, len(_TOKEN.findall(text))) / 0.8)  # prose is ~85 % words, code ~50 %
    clean = max(0.0, 1.0 - 4 * symbols / words)  # one code symbol per eight words halves it
    return round(wordy * clean * (1.0 if ends else 0.4), 3)  # no sentence: below the bar


def _hints(text: str, language: str) -> int:
    """How many of `language`'s keyword hints occur in `text`."""
    return sum(pattern.search(text) is not None for pattern in _HINTS[language])


def detect_language(text: str) -> Detection:
    """The language of `text` for the "auto" choice; see the module docstring for how."""
    head = judged(masked(text[: 2 * HEAD]))  # a bounded slice: masking only shortens it
    if len(_TOKEN.findall(head)) < MIN_TOKENS:
        return Detection(None, {}, "too little text to tell its language" if head.strip() else "there is no text")
    fits = {lang: grammar_fit(head, lang) for lang in CODE}
    scores = {lang: round(fit, 3) for lang, (fit, _) in fits.items()}
    scores[TEXT] = prose_score(head)
    best_fit = max(scores[lang] for lang in CODE)
    tied = [lang for lang in CODE if scores[lang] >= best_fit - TIE]
    best = max(tied, key=lambda lang: (_hints(head, lang), -CODE.index(lang)))
    closest = f"no language fits; the closest, {NAMES[best]}, fails on {1 - best_fit:.0%} of the text"
    if best_fit >= CLEAR_FIT:
        if _CODE_SYMBOLS.search(head) or _hints(head, best):
            errors = fits[best][1]
            how = "with no errors" if errors == 0 else f"with {errors} small error{'s' * (errors > 1)}"
            return Detection(best, scores, f"parses as {NAMES[best]} {how}")
        closest = f"it parses as {NAMES[best]} but holds no code symbol or keyword"  # "Hello, world!" is TypeScript
    if scores[TEXT] >= 0.5:
        return Detection(TEXT, scores, "reads as prose, sentences that no programming language parses")
    return Detection(None, scores, closest)
