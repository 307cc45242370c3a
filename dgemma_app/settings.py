"""Self-describing fill settings: every knob is one dataclass field whose metadata says its range, label and help.

Validation (here), the CLI flags and DGEMMA_* environment variables (`wiring`), the page's sliders and the API
signature with its docs (`ui.page`) and the generation_config.json export (`train.export`) are all derived from
the fields, so a new knob is one field plus the line in the backend that uses it. `FillSettings` holds the
engine's own knobs, shared by every model family; each family subclasses it with its sampler's knobs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


class SettingsError(ValueError):
    """A setting is out of range; the message names it and the allowed range."""


@dataclass(frozen=True)
class Knob:
    """What the front-ends need to know about one setting."""

    label: str  # the page's label
    help: str  # CLI help, the slider's info line, the API docs
    low: float | None = None  # valid range (None: a boolean switch)
    high: float | None = None
    name: str = ""  # in messages; default: the label in lower case
    flag: str = ""  # CLI flag; default: --field-name
    slider: tuple[float, float, float] | None = None  # the page's (min, max, step); None: a number box
    generation: str = ""  # key in generation_config.json; "" = not part of a checkpoint's defaults

    @property
    def message_name(self) -> str:
        return self.name or self.label.lower()


def knob(default: Any, **meta: Any) -> Any:
    """A settings field carrying its `Knob`."""
    return field(default=default, metadata={"knob": Knob(**meta)})


@dataclass(frozen=True)
class Setting:
    """One field of a settings class with its knob, as the front-ends iterate them."""

    name: str
    default: Any
    knob: Knob

    @property
    def kind(self) -> type:
        return type(self.default)  # int, float or bool

    @property
    def flag(self) -> str:
        return self.knob.flag or "--" + self.name.replace("_", "-")


@dataclass
class FillSettings:
    """The engine's knobs, the same for every model family. Valid once constructed (`__post_init__` checks)."""

    seed: int = knob(0, low=0, high=2**31 - 1, label="Seed", help="random seed for the noise")
    candidates: int = knob(
        2, low=1, high=16, label="Candidates", slider=(1, 8, 1),
        help="fills run as one batch, then ranked (parses first)",
    )  # 1 -> 2 lifts the embedded model's parsing fills most; each row costs compute on CPU
    slot_budget: int = knob(16, low=1, high=4096, label="Slot budget", slider=(1, 256, 1), help="slots for a <FILL> without a size")
    edit_strength: float = knob(
        0.5, low=0.0, high=1.0, label="Edit strength", flag="--strength", slider=(0, 1, 0.05),
        help="share of an <EDIT>'s tokens turned to noise",
    )
    left_to_right: bool = knob(False, label="Left-to-right baseline", help="one token per pass, like an autoregressive model")
    exact_length: bool = knob(False, label="Exact length", help="<FILL:n> gets exactly n tokens, no filler")
    one_line: bool = knob(
        True, label="One-line gaps",
        help="a gap at the end of a line (or a whole line) fills one line: the line break the model writes ends it",
    )
    context_after: int = knob(
        32, low=0, high=4096, label="Known tokens after a gap", slider=(0, 64, 8),
        help="known tokens a window carries after a gap's slots: the canvas is cut there (at most the model's canvas)",
    )  # 32: a one-line gap's canvas is 48 of the model's 64 with the obvious set's exact/compile kept (BENCHMARKS.md)

    def __post_init__(self) -> None:
        for setting in settings_of(type(self)):
            setattr(self, setting.name, _checked(setting, getattr(self, setting.name)))

    @classmethod
    def with_overrides(cls, defaults: dict[str, Any], overrides: dict[str, Any]) -> "FillSettings":
        """`defaults` (a checkpoint's), then the overrides given (None = not given); knobs of other families are ignored."""
        names = {s.name for s in settings_of(cls)}
        given = {k: v for k, v in overrides.items() if v is not None}  # an unset override keeps the default
        values = {k: v for k, v in {**defaults, **given}.items() if v is not None and k in names}
        return cls(**values)


def _checked(setting: Setting, value: Any) -> Any:
    """`value` if it is in range (12.0 for a whole-number knob becomes 12); raises SettingsError naming the knob."""
    k = setting.knob
    if k.low is None:
        return value
    name, low, high = k.message_name, k.low, k.high
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SettingsError(f"{name} must be a number between {low} and {high}.")
    if setting.kind is int and not float(value).is_integer():
        raise SettingsError(f"{name} is {value}; it must be a whole number between {low} and {high}.")
    if not low <= value <= high:
        raise SettingsError(f"{name} is {value}; it must be between {low} and {high}.")
    return int(value) if setting.kind is int else value


def settings_of(cls: type) -> list[Setting]:
    """The knobs of a settings class: the family's own first, then the engine's (the order of flags, sliders, API)."""
    return _engine_last([Setting(f.name, f.default, f.metadata["knob"]) for f in dataclasses.fields(cls) if "knob" in f.metadata])


def all_settings(classes: list[type]) -> list[Setting]:
    """The knobs of several families, each name once (front-ends offer every registered family's knobs)."""
    seen: dict[str, Setting] = {}
    for cls in classes:
        for setting in settings_of(cls):
            seen.setdefault(setting.name, setting)
    return _engine_last(list(seen.values()))


def _engine_last(settings: list[Setting]) -> list[Setting]:
    """A family's knobs before the engine's, each group in definition order (a stable sort)."""
    shared = {f.name for f in dataclasses.fields(FillSettings)}
    return sorted(settings, key=lambda s: s.name in shared)


def generation_defaults(cls: type) -> type:
    """A dataclass of the knobs a checkpoint stores in generation_config.json, named as it names them."""
    fields = [(s.knob.generation, s.kind, field(default=s.default)) for s in settings_of(cls) if s.knob.generation]
    return dataclasses.make_dataclass(f"{cls.__name__}Generation", fields)
