"""The Gradio app: `build_demo(source)` for a page, `serve(args)` for `python -m dgemma_app serve` and app.py."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import gradio as gr

from ..model import ModelLoadError
from .page import README, build_demo
from .service import Service
from .source import FillSource

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

__all__ = ["FillSource", "Service", "build_demo", "fill_source", "launch", "serve"]


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
        css_paths=[STATIC / "dgemma.css"], head=f"<script>{script}</script>", allowed_paths=[str(README)],
    )
    return url


def fill_source(args: argparse.Namespace) -> FillSource:
    """The model in this process, or on Ray Serve replicas when --ray-replicas / --ray-address ask for them."""
    if args.ray_replicas or args.ray_address:
        from ..serve_ray import RayFillSource  # Ray is imported only on this path

        return RayFillSource(args)
    return Service.from_args(args)


def serve(args: argparse.Namespace, service: FillSource | None = None, demo: gr.Blocks | None = None) -> int:
    """Load the model (a broken one fails fast with one sentence, status 2), then serve until stopped."""
    if args.mcp and importlib.util.find_spec("mcp") is None:
        print('dgemma_app: --mcp needs the mcp package; install it with pip install "gradio[mcp]==6.31.0".', file=sys.stderr)
        return 2
    service = service or fill_source(args)
    try:
        print(f"dgemma_app: {service.describe()}", file=sys.stderr)
    except ModelLoadError as err:
        print(f"dgemma_app: {err}", file=sys.stderr)
        return 2
    concurrency = args.concurrency * max(args.ray_replicas, 1)  # each Ray replica runs --concurrency fills at once
    if isinstance(service, Service):  # in process, waiting fills wait in the service, where they see their place
        concurrency = max(concurrency, service.capacity)
    launch(demo or build_demo(service), args.host, args.port, concurrency, args.queue_size, args.mcp)
    return 0
