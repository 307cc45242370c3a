"""A small byte-level BPE tokenizer with the engine's special tokens at ids 0..4.

Byte level with no prefix space, so `decode(encode(text)) == text` for any text, including code
indentation; saved so that `AutoTokenizer.from_pretrained(folder)` gives a fast tokenizer offline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dgemma_app.model import NULL_TOKEN, SPECIAL_TOKENS


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,  # first, so they get ids 0..4 in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def save_tokenizer(tok: Tokenizer, folder: Path) -> None:
    """`tokenizer.json` + `tokenizer_config.json` in the layout `AutoTokenizer` expects."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        additional_special_tokens=[NULL_TOKEN],
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(str(folder))


def load_tokenizer(folder: Path) -> Tokenizer:
    return Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))


def newline_ids(tok: Tokenizer) -> list[int]:
    """Ids of the tokens that start with a newline: where a line-end gap's true text stops (`--line-end-prob`)."""
    return [i for i in range(tok.get_vocab_size()) if tok.decode([i]).startswith("\n")]
