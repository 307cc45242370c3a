"""Readable token pieces for the trace: byte-level tokens that only together form a character are decoded
together, and a byte that forms none shows as ⟨e2⟩ instead of U+FFFD. A finished fill keeps whole characters
only (`whole_characters`): its text goes into the user's file.

Decoding one token at a time turns every part of a multi-byte character into '�', and random noise is full
of such parts. Tokens know their bytes in two common schemes: byte-level BPE (GPT-2's alphabet, e.g. 'â' for
0xe2) and SentencePiece's byte fallback ('<0xE2>'). The first token of a character carries it; the tokens that
complete it get "" (the page draws them as continuations).
"""
from __future__ import annotations

import codecs
import re
from functools import cache
from itertools import groupby
from typing import Callable

REPLACEMENT = "\ufffd"
_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _shown_bytes(error: UnicodeDecodeError) -> tuple[str, int]:
    return "".join(f"⟨{b:02x}⟩" for b in error.object[error.start:error.end]), error.end


codecs.register_error("dgemma-bytes", _shown_bytes)


@cache
def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the character a byte-level BPE token uses -> the byte it stands for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


def token_bytes(token: str) -> bytes | None:
    """The bytes a token string (as `convert_ids_to_tokens` gives it) stands for; None when the scheme is unknown."""
    if match := _FALLBACK.fullmatch(token):
        return bytes([int(match.group(1), 16)])
    alphabet = _byte_alphabet()
    if token and all(ch in alphabet for ch in token):
        return bytes(alphabet[ch] for ch in token)
    return None


def _ends_mid_character(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.reason == "unexpected end of data"
    return False


def readable(ids: list[int], piece: Callable[[int], str], raw: Callable[[int], bytes | None]) -> list[str]:
    """One string per token: its own text, or for a run of byte tokens the character they form together on the
    run's first token and "" on the rest; bytes that form no character as ⟨xx⟩."""
    out = [piece(t) for t in ids]
    i = 0
    while i < len(ids):
        data = raw(ids[i]) if REPLACEMENT in out[i] else None
        if data is None:
            i += 1
            continue
        j = i + 1
        while j < len(ids) and j - i < 4 and _ends_mid_character(data):
            more = raw(ids[j])
            if not more or not 0x80 <= more[0] < 0xC0:  # the next token does not continue a character
                break
            data, j = data + more, j + 1
        out[i:j] = [data.decode("utf-8", errors="dgemma-bytes"), *[""] * (j - i - 1)]
        i = j
    return out


def _broken_spans(data: bytes, keep_replacement: bool) -> list[tuple[int, int]]:
    """[start, end) byte spans of `data` that form no character (and U+FFFD's own bytes unless kept)."""
    spans, pos = [], 0
    while pos < len(data):
        try:
            data[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as err:
            spans.append((pos + err.start, pos + err.end))
            pos += err.end
    start = 0
    while not keep_replacement and (start := data.find(REPLACEMENT.encode(), start)) >= 0:
        spans.append((start, start + 3))
        start += 3
    return spans


def whole_characters(ids: list[int], raw: Callable[[int], bytes | None], keep_replacement: bool = False) -> list[int]:
    """`ids` without the byte tokens that form no whole character with their neighbours (a fill cut mid-character,
    a stray continuation byte), so their decoded text holds no U+FFFD; tokens that spell U+FFFD itself go too,
    unless `keep_replacement` (the user's own text has one). Tokens of unknown bytes are whole text and stay."""
    kept: list[int] = []
    for has_bytes, group in groupby(zip(ids, map(raw, ids)), key=lambda pair: pair[1] is not None):
        run = list(group)  # [(token, its bytes)], one run of byte tokens or of whole-text tokens
        spans = _broken_spans(b"".join(data for _, data in run), keep_replacement) if has_bytes else []
        offset = 0
        for token, data in run:
            end = offset + len(data or b"")
            if not any(offset < span_end and span_start < end for span_start, span_end in spans):
                kept.append(token)
            offset = end
    return kept
