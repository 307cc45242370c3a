"""Command line: `python -m dgemma_app fill ...` and `python -m dgemma_app serve ...`.

Every user error ends as one line on stderr and exit status 2, never a traceback; other inputs of
the same run are still processed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import gaps, syntax
from .engine import Engine, FillCancelled, FillSettings, SettingsError
from .model import DEFAULT_MODEL_DIR, ModelLoadError, load_model

BAD_INPUT = 2


def _env(name: str, default):
    """Settings also come from DGEMMA_* environment variables; flags win. The raw string is returned so
    that argparse converts it with the flag's type and reports a bad value in one line."""
    return os.environ.get(f"DGEMMA_{name.upper()}", default)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=_env("model", str(DEFAULT_MODEL_DIR)), help="checkpoint folder or hub id in the local cache (default: the embedded model)")
    group.add_argument("--device-map", default=_env("device_map", "auto"), help="accelerate device map: auto, cpu, cuda:0 (default auto)")
    group.add_argument("--max-memory", default=_env("max_memory", None), help='per-device memory for sharding, e.g. "0=70GiB,1=70GiB,cpu=100GiB"')
    group.add_argument("--dtype", default=_env("dtype", "auto"), choices=["auto", "bf16", "fp16", "fp32"])
    group.add_argument("--trust-remote-code", action="store_true", default=_env("trust_remote_code", "") == "1", help="allow code shipped with the checkpoint to run (off by default)")
    group.add_argument("--threads", type=int, default=_env("threads", None), help="torch CPU threads (default: torch's choice; on a busy machine 1 can be far faster)")
    group.add_argument("--max-input-bytes", type=int, default=_env("max_input_bytes", gaps.MAX_INPUT_BYTES))
    group.add_argument("--max-markers", type=int, default=_env("max_markers", gaps.MAX_MARKERS))


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


def load_from_args(args: argparse.Namespace):
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return load_model(args.model, args.device_map, args.dtype, parse_max_memory(args.max_memory), args.trust_remote_code)


def _fill_parser(sub) -> None:
    p = sub.add_parser("fill", help="fill the gaps in files (or - for stdin)")
    p.add_argument("inputs", nargs="+", help="files with <FILL>, <FILL:n> or <EDIT>...</EDIT> markers; - reads stdin")
    p.add_argument("--lang", help=f"language ({', '.join(syntax.LANGUAGES)}); default: from the file extension")
    p.add_argument("--json", action="store_true", help="one JSON object per input, one per line")
    p.add_argument("--trace", action="store_true", help="with --json, include every denoising pass")
    add_sampler_args(p)
    add_model_args(p)


SAMPLER_FLAGS = (  # flag, FillSettings field, type
    ("--max-passes", "max_passes", int),
    ("--entropy-bound", "entropy_bound", float),
    ("--t-max", "t_max", float),
    ("--t-min", "t_min", float),
    ("--stability", "stability_threshold", int),
    ("--confidence", "confidence_threshold", float),
    ("--seed", "seed", int),
    ("--candidates", "candidates", int),
    ("--slot-budget", "slot_budget", int),
    ("--strength", "edit_strength", float),
)


def add_sampler_args(parser: argparse.ArgumentParser) -> None:
    """The sampler knobs, shared by fill, eval and the benchmarks."""
    group = parser.add_argument_group("sampler (defaults from the model's generation_config.json)")
    for flag, dest, kind in SAMPLER_FLAGS:
        group.add_argument(flag, dest=dest, type=kind)
    group.add_argument("--left-to-right", action="store_true", default=None, help="baseline: one token per pass")
    group.add_argument("--exact-length", action="store_true", default=None, help="<FILL:n> gets exactly n tokens (no filler)")


def settings_from_args(loaded, args: argparse.Namespace, **overrides) -> FillSettings:
    """Model defaults, then the flags given, then `overrides`; validated."""
    values = {dest: getattr(args, dest) for _, dest, _ in SAMPLER_FLAGS}
    values["left_to_right"] = args.left_to_right
    values["exact_length"] = args.exact_length
    values.update(overrides)
    settings = FillSettings.from_model(loaded, **values)
    settings.validate()
    return settings


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the web app")
    add_serve_args(p)


def add_serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=_env("host", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")))
    p.add_argument("--port", type=int, default=_env("port", os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--concurrency", type=int, default=_env("concurrency", 1), help="fills run at once")
    p.add_argument("--queue-size", type=int, default=_env("queue_size", 64), help="requests waiting before 'busy'")
    p.add_argument("--mcp", action="store_true", default=_env("mcp", "") == "1", help="also serve the tools over MCP")
    add_model_args(p)


def _read_input(name: str) -> tuple[str, str | None]:
    """(text, path for the language guess). Raises ValueError with a user-facing message."""
    if name == "-":
        data = sys.stdin.buffer.read()
        path = None
    else:
        path = name
        try:
            data = Path(name).read_bytes()
        except FileNotFoundError:
            raise ValueError("no such file") from None
        except IsADirectoryError:
            raise ValueError("is a folder, not a file") from None
        except OSError as err:
            raise ValueError(f"cannot be read ({err.strerror})") from None
    try:
        return data.decode("utf-8"), path
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text; pass source code or prose") from None


def _prepare(name: str, args: argparse.Namespace) -> tuple[str, str]:
    """Read and check one input before any model work: (text, language). Raises ValueError for the user."""
    text, path = _read_input(name)
    language = syntax.language_for(path, args.lang)
    gaps.parse_markers(text, args.max_input_bytes, args.max_markers)
    return text, language


def run_fill(args: argparse.Namespace) -> int:
    status = 0
    if args.trace and not args.json:
        print("dgemma_app: --trace only applies with --json; ignored", file=sys.stderr)
    ready: list[tuple[str, str, str]] = []  # (label, text, language)
    for name in args.inputs:
        label = "stdin" if name == "-" else name
        try:
            ready.append((label, *_prepare(name, args)))
        except ValueError as err:  # unreadable input, MarkerError, UnknownLanguageError
            print(f"dgemma_app: {label}: {err}", file=sys.stderr)
            status = BAD_INPUT
    if not ready:
        return status
    try:
        loaded = load_from_args(args)
        settings = settings_from_args(loaded, args)
    except (ModelLoadError, SettingsError) as err:
        print(f"dgemma_app: {err}", file=sys.stderr)
        return BAD_INPUT
    engine = Engine(loaded)
    for label, text, language in ready:
        try:
            result = engine.fill(text, language, settings, max_bytes=args.max_input_bytes, max_markers=args.max_markers)
        except (ValueError, FillCancelled) as err:
            print(f"dgemma_app: {label}: {err}", file=sys.stderr)
            status = BAD_INPUT
            continue
        if args.json:
            print(json.dumps(result.to_dict(with_trace=args.trace), ensure_ascii=False), flush=True)
        else:
            if len(args.inputs) > 1:
                print(f"==> {label} <==")
            sys.stdout.write(result.text)
            sys.stdout.flush()
            for note in result.notes:
                print(f"dgemma_app: {label}: {note}", file=sys.stderr)
            print(f"dgemma_app: {label}: {summary(result)}", file=sys.stderr)
    return status


def summary(result) -> str:
    """One line: parse status (and what the check covers) and speed."""
    report = result.report
    s = result.stats
    verdict = "parses" if report.parses else f"{len(report.issues)} parse error(s)"
    parse = f"{verdict} ({report.checked_by})" if report.checked else report.checked_by
    return f"{parse}; {s.tokens} tokens in {s.passes} passes, {s.seconds:.2f} s ({s.tokens_per_second:.0f} tokens/s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgemma_app", description="Code infilling with a DiffusionGemma text diffusion model.")
    sub = parser.add_subparsers(dest="command", required=True)
    _fill_parser(sub)
    _serve_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "fill":
        return run_fill(args)
    from .ui import serve

    return serve(args)
