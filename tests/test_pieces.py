"""Readable trace pieces: byte tokens decoded together, lone bytes as ⟨xx⟩, never U+FFFD; fills of whole characters."""
import pytest
import torch

from dgemma_app.engine import Engine
from dgemma_app.model import DEFAULT_MODEL_DIR, load_model
from dgemma_app.pieces import readable, token_bytes, whole_characters
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


def test_whole_characters_drops_only_the_bytes_that_form_none(engine):
    tokenizer = engine.loaded.tokenizer
    ids = tokenizer("é ü 中文 😀 x", add_special_tokens=False)["input_ids"]

    def kept(cut: list[int], keep_replacement: bool = False) -> str:
        return tokenizer.decode(whole_characters(cut, engine.raw, keep_replacement))

    assert kept(ids) == "é ü 中文 😀 x"  # nothing broken: nothing dropped
    assert kept(ids[1:]) == " ü 中文 😀 x"  # a stray continuation byte first
    assert kept(ids[:8]) == "é ü "  # cut inside 中
    lone = tokenizer.convert_tokens_to_ids(["â", "x", "Ã"])  # 0xe2 then no continuation; 0xc3 at the end
    assert kept(lone) == "x"
    own = tokenizer("a\ufffdb", add_special_tokens=False)["input_ids"]
    assert kept(own) == "ab" and kept(own, keep_replacement=True) == "a\ufffdb"


UNICODE_HEAVY = "Zoë und Jürgen aßen crêpes 🍰 im Café 中文. <FILL> Über den Fluß 漢字 😀, naïve façade. <FILL:12> Ende — «fin» 🎉.\n"


@pytest.fixture(scope="module")
def default_engine() -> Engine:
    return Engine(load_model(DEFAULT_MODEL_DIR, device_map="cpu"))


def test_fills_of_the_default_model_never_hold_the_replacement_character(default_engine):
    """Before fills kept whole characters only, 19 of these 20 seeds put U+FFFD into a result."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the CLI's --threads 1: a second thread only slows a busy machine
    try:
        results = [default_engine.fill(UNICODE_HEAVY, "text", default_engine.settings(seed=seed)) for seed in range(20)]
    finally:
        torch.set_num_threads(threads)
    for seed, result in enumerate(results):
        for candidate in result.candidates:
            assert "\ufffd" not in candidate.text and not any("\ufffd" in fill for fill in candidate.fills), seed
        assert "\ufffd" not in result.text
