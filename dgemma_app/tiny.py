"""A tiny random-weight DiffusionGemma with a real byte-level BPE tokenizer, built in seconds.

Tests, the golden fills and the load benchmark (when no model is given) use it through the same `load_model`
path as the embedded default and the real checkpoint. Its fills are junk; every pass and check is real.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .model import tiny_config
from .train.tokenizer import save_tokenizer, train_tokenizer

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "import json\n\nprint(json.dumps({'a': 1}))\n",
    "function add(a, b) {\n  return a + b;\n}\n",
    "The quick brown fox jumps over the lazy dog.\n",
    "for i in range(10):\n    total += i\n",
]


def build_tiny_model(folder: Path, canvas_length: int = 16, max_positions: int = 256, seed: int = 0) -> Path:
    """Save a random-weight DiffusionGemma + tokenizer in the layout load_model expects; returns `folder`."""
    from transformers import DiffusionGemmaForBlockDiffusion

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(CORPUS * 20, vocab_size=300)
    save_tokenizer(tokenizer, folder)
    torch.manual_seed(seed)
    config = tiny_config(tokenizer.get_vocab_size(), canvas_length=canvas_length, max_positions=max_positions)
    DiffusionGemmaForBlockDiffusion(config).save_pretrained(folder)
    return folder
