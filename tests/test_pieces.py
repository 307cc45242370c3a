"""Readable trace pieces: byte tokens decoded together, lone bytes as ⟨xx⟩, never U+FFFD."""
import torch

from dgemma_app.pieces import readable, token_bytes
from dgemma_app.ui import render


def test_byte_level_and_byte_fallback_tokens_know_their_bytes():
    assert token_bytes("Ġ=") == b" ="
    assert token_bytes("â") == b"\xe2"
    assert token_bytes("<0xE2>") == b"\xe2"
    assert token_bytes("▁the") is None  # SentencePiece text: its decoded piece is already whole


def test_a_character_split_over_tokens_is_shown_once_and_a_lone_byte_as_its_value(engine):
    tokenizer = engine.loaded.tokenizer
    ids = tokenizer('x = "—é"', add_special_tokens=False)["input_ids"]
    pieces = readable(ids, engine.piece, engine.raw)
    assert "".join(pieces) == 'x = "—é"' and "" in pieces
    lone = tokenizer.convert_tokens_to_ids(["â", "x"])  # 0xe2, then no continuation
    assert readable(lone, engine.piece, engine.raw) == ["⟨e2⟩", "x"]


def test_byte_level_noise_never_shows_the_replacement_character(engine):
    vocab = len(engine.loaded.tokenizer)
    for seed in range(5):
        noise = torch.randint(0, vocab, (256,), generator=torch.Generator().manual_seed(seed)).tolist()
        assert "\ufffd" not in "".join(readable(noise, engine.piece, engine.raw))


def test_whitespace_is_marked_in_the_canvas():
    html = render.visible(" \tx\n")
    assert html.count('class="dg-ws"') == 3 and "↵\n" in html and "x" in html
