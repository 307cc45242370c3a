"""From command-line arguments to a loaded model and its settings, for every front-end (CLI, app, eval, bench).

Flags also come from DGEMMA_* environment variables (a flag wins): `--device-map` from DGEMMA_DEVICE_MAP,
`--max-passes` from DGEMMA_MAX_PASSES. The sampler flags are derived from the registered families' settings
dataclasses, so a new knob is a new flag without an edit here.
"""
from __future__ import annotations

import argparse
import os

from . import gaps
from .backends.base import LoadedModel, registered, settings_for
from .gaps import Limits
from .model import DEFAULT_MODEL_DIR, ModelLoadError, load_model
from .settings import FillSettings, Setting, all_settings


def env(name: str, default=None):
    """DGEMMA_<NAME>, else `default`. The raw string is returned so that argparse converts it with the flag's
    type and reports a bad value in one line."""
    return os.environ.get(f"DGEMMA_{name.upper()}", default)


def front_end_settings() -> list[Setting]:
    """Every knob the front-ends offer: those of all registered families, each once."""
    return all_settings([backend.settings for backend in registered()])


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=env("model", str(DEFAULT_MODEL_DIR)), help="checkpoint folder or hub id in the local cache (default: the embedded model)")
    group.add_argument("--device-map", default=env("device_map", "auto"), help="accelerate device map: auto, cpu, cuda:0 (default auto)")
    group.add_argument("--max-memory", default=env("max_memory"), help='per-device memory for sharding, e.g. "0=70GiB,1=70GiB,cpu=100GiB"')
    group.add_argument("--dtype", default=env("dtype", "auto"), choices=["auto", "bf16", "fp16", "fp32"])
    group.add_argument("--trust-remote-code", action="store_true", default=env("trust_remote_code", "") == "1", help="allow code shipped with the checkpoint to run (off by default)")
    group.add_argument("--threads", type=int, default=env("threads"), help="torch CPU threads (default: torch's choice; on a busy machine 1 can be far faster)")
    group.add_argument("--max-input-bytes", type=int, default=env("max_input_bytes", gaps.MAX_INPUT_BYTES))
    group.add_argument("--max-markers", type=int, default=env("max_markers", gaps.MAX_MARKERS))


def add_sampler_args(parser: argparse.ArgumentParser) -> None:
    """The sampler knobs, shared by fill, eval and the benchmarks; unset flags keep the model's defaults."""
    group = parser.add_argument_group("sampler (defaults from the model's generation_config.json)")
    for s in front_end_settings():
        name = s.flag[2:].replace("-", "_")
        if s.kind is bool:  # --name / --no-name; DGEMMA_NAME=1 or 0
            group.add_argument(s.flag, dest=s.name, action=argparse.BooleanOptionalAction, default={"1": True, "0": False}.get(env(name) or ""),
                               help=f"{s.knob.help} (default: {'on' if s.default else 'off'})")
        else:
            group.add_argument(s.flag, dest=s.name, type=s.kind, default=env(name), help=f"{s.knob.help} ({s.knob.low} to {s.knob.high})")


def parse_max_memory(raw: str | None) -> dict | None:
    """'0=70GiB,cpu=100GiB' -> {0: '70GiB', 'cpu': '100GiB'} for accelerate."""
    if not raw:
        return None
    out: dict = {}
    for part in raw.split(","):
        key, _, value = part.partition("=")
        if not value:
            raise ModelLoadError(f"--max-memory part {part!r} is not DEVICE=SIZE, e.g. 0=70GiB.")
        out[int(key) if key.strip().isdigit() else key.strip()] = value.strip()
    return out


def load_from_args(args: argparse.Namespace) -> LoadedModel:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return load_model(args.model, args.device_map, args.dtype, parse_max_memory(args.max_memory), args.trust_remote_code)


def settings_from_args(loaded: LoadedModel, args: argparse.Namespace, **overrides) -> FillSettings:
    """Model defaults, then the flags given, then `overrides`; validated. Raises SettingsError."""
    values = {s.name: getattr(args, s.name) for s in front_end_settings()}
    return settings_for(loaded, **{**values, **overrides})


def limits_from_args(args: argparse.Namespace) -> Limits:
    return Limits(args.max_input_bytes, args.max_markers)
