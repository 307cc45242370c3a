"""The Gradio app: `build_demo(service)` for a page, `serve(args)` for `python -m dgemma_app serve` and app.py."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import gradio as gr

from ..model import ModelLoadError
from .page import build_demo
from .service import Service

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

__all__ = ["Service", "build_demo", "launch", "serve"]


def launch(
    demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, concurrency: int = 1, queue_size: int = 64,
    mcp: bool = False, block: bool = True,
) -> str:
    """Queue (excess requests are told the queue is full) and serve `demo` with static/'s CSS and JS; returns the URL.
    Each request handled at once holds a worker thread while it streams, so there are enough for `concurrency`."""
    script = (STATIC / "dgemma.js").read_text(encoding="utf-8")
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    _, url, _ = demo.launch(
        server_name=host, server_port=port, mcp_server=mcp, prevent_thread_lock=not block, quiet=not block,
        max_threads=max(40, concurrency + 8),
        css_paths=[STATIC / "dgemma.css"], head=f"<script>{script}</script>",
    )
    return url


def serve(args: argparse.Namespace, service: Service | None = None, demo: gr.Blocks | None = None) -> int:
    """Load the model (a broken one fails fast with one sentence, status 2), then serve until stopped."""
    if args.mcp and importlib.util.find_spec("mcp") is None:
        print('dgemma_app: --mcp needs the mcp package; install it with pip install "gradio[mcp]==6.31.0".', file=sys.stderr)
        return 2
    service = service or Service.from_args(args)
    try:
        print(f"dgemma_app: {service.describe()}", file=sys.stderr)
    except ModelLoadError as err:
        print(f"dgemma_app: {err}", file=sys.stderr)
        return 2
    concurrency = max(args.concurrency, service.capacity)  # waiting fills wait in the service, where they see their place
    launch(demo or build_demo(service), args.host, args.port, concurrency, args.queue_size, args.mcp)
    return 0
