"""What the page fills through: the in-process `Service`, or Ray Serve replicas of it (`dgemma_app.serve_ray`).

The page only calls these members, so a source that runs the model elsewhere plugs in without the page knowing.
"""
from __future__ import annotations

from typing import Iterator, Protocol

from ..engine import FillRequest
from ..gaps import Limits
from ..results import FillResult
from ..settings import FillSettings
from .service import Progress


class FillUnavailable(RuntimeError):
    """The fill could not be served (its model replicas stopped); the message is one sentence for the user."""


class FillSource(Protocol):
    source: str  # the model's name as the operator gave it
    limits: Limits

    @property
    def ready(self) -> bool:
        """Whether the model is loaded (else the first fill says it is loading)."""

    def describe(self) -> str:
        """One Markdown line about the loaded model. Raises ModelLoadError."""

    def defaults(self) -> FillSettings:
        """The model's default sampler settings. Raises ModelLoadError."""

    def request(self, text: str, language: str) -> FillRequest:
        """The input parsed and checked against the limits. Raises ValueError for the user."""

    def run(self, request: FillRequest, overrides: dict, interval: float = 0.1, passes: bool = True) -> Iterator[Progress | FillResult]:
        """Progress while the model works (with its passes when `passes`, at most every `interval` seconds, longer
        under load), then the result; closing the iterator cancels the fill.
        Raises ValueError (settings), ModelLoadError or FillUnavailable."""
