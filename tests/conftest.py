"""Shared fixtures: the package's tiny random-weight DiffusionGemma, built once per test session in seconds."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dgemma_app.engine import Engine  # noqa: E402
from dgemma_app.model import load_model  # noqa: E402
from dgemma_app.tiny import build_tiny_model  # noqa: E402


def pytest_addoption(parser) -> None:
    parser.addoption("--screenshots", type=Path, default=None, help="folder for the browser tests' screenshots (default: a temporary one)")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    return load_model(tiny_model_dir, device_map="cpu")


@pytest.fixture(scope="session")
def engine(tiny_loaded) -> Engine:
    return Engine(tiny_loaded)
