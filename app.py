"""`python app.py [flags]` serves the app; `gradio app.py` runs it in reload mode.

The flags are those of `python -m dgemma_app serve` (also from DGEMMA_* environment variables).
Importing this file loads no model: `demo` loads it on first use.
"""
import argparse
import sys

import gradio as gr

from dgemma_app.cli import add_serve_args
from dgemma_app.ui import build_demo, fill_source, serve

parser = argparse.ArgumentParser(description="Fill gaps in code with a DiffusionGemma model, in the browser.")
add_serve_args(parser)
args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])

service = fill_source(args)
demo = build_demo(service)

if __name__ == "__main__" and gr.NO_RELOAD:  # in reload mode, a re-run after an edit only swaps `demo`
    status = serve(args, service, demo)
    if status:
        sys.exit(status)
