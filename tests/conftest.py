"""Shared fixtures: a tiny DiffusionGemma with random weights and a real byte-level BPE tokenizer.

Built once per test session in seconds; every test that needs "a model" uses this folder, loaded
through the same `load_model` path as the embedded default and the real checkpoint.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dgemma_app.engine import Engine  # noqa: E402
from dgemma_app.model import load_model, tiny_config  # noqa: E402

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "import json\n\nprint(json.dumps({'a': 1}))\n",
    "function add(a, b) {\n  return a + b;\n}\n",
    "The quick brown fox jumps over the lazy dog.\n",
    "for i in range(10):\n    total += i\n",
]


def build_tiny_model(folder: Path, canvas_length: int = 16, max_positions: int = 256, seed: int = 0) -> Path:
    """Save a random-weight DiffusionGemma + tokenizer in the layout load_model expects."""
    from transformers import DiffusionGemmaForBlockDiffusion

    from dgemma_app.train.tokenizer import save_tokenizer, train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(CORPUS * 20, vocab_size=300)
    save_tokenizer(tokenizer, folder)
    torch.manual_seed(seed)
    config = tiny_config(tokenizer.get_vocab_size(), canvas_length=canvas_length, max_positions=max_positions)
    DiffusionGemmaForBlockDiffusion(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    return load_model(tiny_model_dir, device_map="cpu")


@pytest.fixture(scope="session")
def engine(tiny_loaded) -> Engine:
    return Engine(tiny_loaded)
