"""Token streams for training: each corpus file encoded once, cached as numpy arrays under `runs/`.

A *pack* is both splits and the tokenizer in one `.npz` file: what a training run needs on another machine
(a GPU one) without the corpus sources, the jsonl files or the tokenizer folder.

Every file starts with `<bos>` (the engine may prepend it at file start) and windows never cross into
the next file: positions past a file's end read as `<null>`, as the engine pads a canvas there.
"""
from __future__ import annotations

import hashlib
import io
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgemma_app.model import SPECIAL_TOKENS
from dgemma_app.train.corpus import read_docs
from dgemma_app.train.tokenizer import load_tokenizer

SPLITS = ("train", "val")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")  # what a model folder holds of its tokenizer
BOS_ID = SPECIAL_TOKENS.index("<bos>")
NULL_ID = SPECIAL_TOKENS.index("<null>")


@dataclass
class TokenStream:
    tokens: np.ndarray  # [N] all files, each starting with <bos>
    offsets: np.ndarray  # [F + 1] file f is tokens[offsets[f]:offsets[f + 1]]
    chars: int  # characters of text behind the tokens, to compare vocabularies per character

    @property
    def chars_per_token(self) -> float:
        return self.chars / max(1, len(self.tokens) - (len(self.offsets) - 1))

    def window(self, rng: np.random.Generator, context: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """A random (context [context], continuation [length]) pair inside one file, `<null>` past its end."""
        for _ in range(1000):
            g = int(rng.integers(0, len(self.tokens)))
            f = int(np.searchsorted(self.offsets, g, side="right")) - 1
            if g - self.offsets[f] >= context:
                break
        else:
            raise ValueError(f"no file has {context} tokens of context")
        end = int(self.offsets[f + 1])
        after = self.tokens[g : min(g + length, end)]
        after = np.concatenate([after, np.full(length - len(after), NULL_ID, dtype=after.dtype)])
        return self.tokens[g - context : g], after


def encode_split(jsonl: Path, tokenizer_dir: Path, cache_dir: Path) -> TokenStream:
    """Encode one split with one tokenizer, or read the cached arrays from an earlier run."""
    key = hashlib.sha1((Path(tokenizer_dir) / "tokenizer.json").read_bytes()).hexdigest()[:10]
    cache = Path(cache_dir) / f"{Path(jsonl).stem}-{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return TokenStream(z["tokens"], z["offsets"], int(z["chars"]))
    tok = load_tokenizer(tokenizer_dir)
    texts = [d.text for d in read_docs(Path(jsonl))]
    encoded = [np.array([BOS_ID] + e.ids, dtype=np.uint16) for e in tok.encode_batch(texts)]
    offsets = np.cumsum([0] + [len(e) for e in encoded])
    stream = TokenStream(np.concatenate(encoded), offsets, sum(len(t) for t in texts))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, tokens=stream.tokens, offsets=stream.offsets, chars=stream.chars)
    return stream


def encode_splits(corpus: Path, tokenizer_dir: Path) -> dict[str, TokenStream]:
    """Both splits of a corpus folder, encoded with one tokenizer (or read from its cache)."""
    return {split: encode_split(corpus / f"{split}.jsonl", tokenizer_dir, corpus / "cache") for split in SPLITS}


def fit_files(stream: TokenStream, keep: int) -> TokenStream:
    """A stream of whole files with at most `keep` tokens: files in a fixed random order (so every source keeps its
    share) until the next would pass `keep`, then back in the corpus's order."""
    sizes = np.diff(stream.offsets)  # [F]
    order = np.random.default_rng(0).permutation(len(sizes))
    taken = np.sort(order[: int(np.searchsorted(np.cumsum(sizes[order]), keep, side="right"))])
    parts = [stream.tokens[stream.offsets[f] : stream.offsets[f + 1]] for f in taken]
    tokens = np.concatenate(parts) if parts else stream.tokens[:0]
    chars = round(stream.chars * len(tokens) / max(1, len(stream.tokens)))  # characters are not kept per file
    return TokenStream(tokens, np.cumsum([0] + [len(p) for p in parts]), chars)


def pack_bytes(streams: dict[str, TokenStream], tokenizer_dir: Path) -> bytes:
    """The pack file's bytes: token ids as xz-compressed little-endian uint16 (0.47 bytes a token on this corpus
    against zlib's 0.72, so about half as much text again travels in the same bytes), offsets, tokenizer files."""
    arrays = {f"{split}_tokens_xz": np.frombuffer(lzma.compress(s.tokens.astype("<u2").tobytes(), preset=6), np.uint8)
              for split, s in streams.items()}
    arrays |= {f"{split}_{key}": np.asarray(getattr(s, key)) for split, s in streams.items() for key in ("offsets", "chars")}
    arrays |= {f"file_{name}": np.frombuffer((Path(tokenizer_dir) / name).read_bytes(), dtype=np.uint8) for name in TOKENIZER_FILES}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # the tokens are compressed already
    return buffer.getvalue()


def write_pack(corpus: Path, tokenizer_dir: Path, out: Path, max_bytes: int | None = None) -> dict[str, TokenStream]:
    """Encode (or read cached) both splits of `corpus` with one tokenizer and store them with it in `out`; with
    `max_bytes`, the training split keeps as many whole files as fit the file in that size (`fit_files`)."""
    streams = encode_splits(corpus, tokenizer_dir)
    data = pack_bytes(streams, tokenizer_dir)
    while max_bytes is not None and len(data) > max_bytes:  # shrink by the overshoot, 1 % more each try
        train = streams["train"]
        keep = int(len(train.tokens) * (max_bytes / len(data)) * 0.99)
        streams = {**streams, "train": fit_files(train, keep)}
        data = pack_bytes(streams, tokenizer_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return streams


def read_pack(pack: Path, tokenizer_out: Path) -> dict[str, TokenStream]:
    """The splits of a pack; its tokenizer files are written to `tokenizer_out` (export and `--init-from` read them there)."""
    z = np.load(pack)
    tokenizer_out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        (tokenizer_out / name).write_bytes(z[f"file_{name}"].tobytes())

    def tokens(split: str) -> np.ndarray:  # [N]; packs before the xz format hold the ids as they are
        if f"{split}_tokens" in z:
            return z[f"{split}_tokens"]
        return np.frombuffer(lzma.decompress(z[f"{split}_tokens_xz"].tobytes()), "<u2").astype(np.uint16)

    return {split: TokenStream(tokens(split), z[f"{split}_offsets"], int(z[f"{split}_chars"])) for split in SPLITS}


class BatchSource:
    """What the training loop asks of a batch source: `next(ar)`, and `wait`/`close` (nothing to do by default)."""

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
