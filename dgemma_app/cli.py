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

from . import syntax
from .batching import MAX_BATCH, QUEUE_SIZE
from .engine import Engine, FillRequest
from .gaps import Limits
from .model import ModelLoadError
from .results import counted, rate
from .settings import SettingsError
from .wiring import add_model_args, add_sampler_args, env, limits_from_args, load_from_args, settings_from_args

BAD_INPUT = 2


def _fill_parser(sub) -> None:
    p = sub.add_parser("fill", help="fill the gaps in files (or - for stdin)")
    p.add_argument("inputs", nargs="+", help="files with <FILL>, <FILL:n> or <EDIT>...</EDIT> markers; - reads stdin")
    p.add_argument("--lang", help=f"language ({', '.join(syntax.LANGUAGES)}), or {syntax.AUTO} to detect it from the text; "
                                  f"default: from the file extension, {syntax.AUTO} for stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per input, one per line")
    p.add_argument("--trace", action="store_true", help="with --json, include every denoising pass")
    add_sampler_args(p)
    add_model_args(p)


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the web app")
    add_serve_args(p)


def add_serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=env("host", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")))
    p.add_argument("--port", type=int, default=env("port", os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--concurrency", type=int, default=env("concurrency", 1),
                   help="web requests handled at once; raised to --max-batch + --queue-size, so every waiting user sees its place")
    p.add_argument("--max-batch", type=int, default=env("max_batch", MAX_BATCH),
                   help=f"fills that share one model call at most (default {MAX_BATCH}); 1 = one fill at a time (serial)")
    p.add_argument("--queue-size", type=int, default=env("queue_size", QUEUE_SIZE), help="fills waiting before 'the queue is full'")
    p.add_argument("--mcp", action="store_true", default=env("mcp", "") == "1", help="also serve the tools over MCP")
    group = p.add_argument_group("Ray Serve (optional; pip install \"ray[serve]==2.60.0\")")
    group.add_argument("--ray-replicas", type=int, default=env("ray_replicas", 0), help="fill on this many Ray Serve replicas, each with its own model (default 0: in this process)")
    group.add_argument("--ray-address", default=env("ray_address"), help="join the Ray cluster at this address (host:port) instead of starting one on loopback")
    group.add_argument("--ray-gpus", type=float, default=env("ray_gpus", 0), help="GPUs per replica (1: one replica per GPU)")
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


def _prepare(name: str, lang: str | None, limits: Limits) -> tuple[FillRequest, syntax.Detection | None]:
    """Read, parse and check one input before any model work; the detection when the language came from the
    text (markers are checked first, so an empty input says so). Raises ValueError for the user."""
    text, path = _read_input(name)
    detections: list[syntax.Detection | None] = []

    def resolve(text: str, choice: str) -> str:
        try:
            language, detection = syntax.language_of(text, path, choice)
        except syntax.UnknownLanguageError as err:
            how = "" if syntax.detects(path, choice) else f" (or --lang {syntax.AUTO} to detect it from the text)"
            raise syntax.UnknownLanguageError(f"{err} Pick it with --lang{how}.") from None
        detections.append(detection)
        return language

    return FillRequest.parse(text, lang or "", limits, resolve), detections[0]


def run_fill(args: argparse.Namespace) -> int:
    status = 0
    if args.trace and not args.json:
        print("dgemma_app: --trace only applies with --json; ignored", file=sys.stderr)
    ready: list[tuple[str, FillRequest]] = []
    limits = limits_from_args(args)
    for name in args.inputs:
        label = "stdin" if name == "-" else name
        try:
            request, detection = _prepare(name, args.lang, limits)
        except ValueError as err:  # unreadable input, MarkerError, UnknownLanguageError
            print(f"dgemma_app: {label}: {err}", file=sys.stderr)
            status = BAD_INPUT
            continue
        if detection is not None:
            print(f"dgemma_app: {label}: detected {request.language} ({detection.reason})", file=sys.stderr)
        ready.append((label, request))
    if not ready:
        return status
    try:
        loaded = load_from_args(args)
        settings = settings_from_args(loaded, args)
    except (ModelLoadError, SettingsError) as err:
        print(f"dgemma_app: {err}", file=sys.stderr)
        return BAD_INPUT
    engine = Engine(loaded)
    for label, request in ready:
        result = engine.run(request, settings)
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
    return f"{parse}; {counted(s.tokens, 'token')} in {counted(s.passes, 'pass', 'passes')}, {s.seconds:.2f} s ({rate(s.tokens_per_second)} tokens/s)"


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
