"""Model families the engine can drive, each registered under its checkpoints' `model_type`.

Importing this package registers them all: DiffusionGemma (the app's models) and the rule backend (no model;
it proves the seam in tests and shows where a masked-diffusion family such as LLaDA or Dream would plug in).
"""
from __future__ import annotations

from . import diffusion_gemma, rule
from .base import backend_for, registered

__all__ = ["backend_for", "diffusion_gemma", "registered", "rule"]
