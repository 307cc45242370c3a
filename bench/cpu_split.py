"""Where the server's CPU goes under a burst: the model's worker thread against the web framework.

    python bench/cpu_split.py --clients 30 --threads 1 [--max-batch 32] [--model DIR] [--max-passes 4]

Starts the real server as `bench/load.py` does, warms it up, then runs one load phase (`--clients` users submit
at once) while py-spy samples the server process (`py-spy record --format raw`, every thread, waits left out).
A sample whose stack holds the batcher's worker loop (`_run` in dgemma_app/batching.py) is the model's (the
engine, the library's generate, torch); every other sample is the framework's (Gradio, uvicorn/starlette,
asyncio, the service's streaming loop in Gradio's threads); samples of a waiting thread are left out. Prints the
phase's figures, the server's CPU seconds, and the split; py-spy (in requirements.txt) must be allowed to attach (root).
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import Server, connect, cpu_seconds, free_port, load_phase, model_folder, one_fill  # noqa: E402

MODEL_MARK = "(dgemma_app/batching.py"  # a frame of the batcher's worker: `_run (dgemma_app/batching.py:N)`
# innermost frames of a thread that waits (py-spy counts some waits as active: a Condition's timed wait, the
# asyncio loop's select, Gradio's main thread sleeping); their samples are counted apart, not as CPU
IDLE = ("Condition.wait ", "Event.wait ", "Blocks.block_thread ", "Runner.run ", "select ", "sleep ")
FRAMEWORK = ("gradio", "uvicorn", "starlette", "fastapi", "anyio", "asyncio", "h11", "httptools", "websockets", "httpx", "pydantic", "orjson")


def split(raw: str) -> dict[str, int]:
    """Samples per part from py-spy's raw (collapsed) output: `frame;frame;... count` per line."""
    parts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if stack.rsplit(";", 1)[-1].startswith(IDLE):
            parts["waiting (not CPU)"] += int(count)
        elif MODEL_MARK in stack and "_run " in stack:
            parts["model"] += int(count)
        elif any(f"/{name}/" in stack or f"({name}/" in stack for name in FRAMEWORK):
            parts["framework"] += int(count)
        else:
            parts["other (threads, our streaming loop)"] += int(count)
    return dict(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-passes", type=int, default=4)
    parser.add_argument("--threads", type=int, help="server --threads")
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--time-limit", type=float, default=300)
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks in this file")
    args = parser.parse_args()
    keep: list = []
    model, knobs = model_folder(args.model, keep), {"max_passes": args.max_passes}
    with tempfile.TemporaryDirectory(prefix="dgemma-cpu-split-") as folder:
        server = Server(model, free_port(), 1, 64, args.max_batch, args.threads, Path(folder) / "server.log")
        try:
            server.wait_ready(args.time_limit)
            one_fill(connect(server.url), 0, knobs, args.time_limit)  # warm-up, not counted
            out = Path(folder) / "spy.txt"
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--format", "raw", "--output", str(out),
                                    "--rate", str(args.rate), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            before = cpu_seconds(server.proc.pid)
            phase = load_phase(server.url, args.clients, knobs, args.time_limit)
            used = cpu_seconds(server.proc.pid) - before
            spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            spy.wait(timeout=60)
            parts = split(out.read_text()) if out.exists() else {}
            if args.raw and out.exists():
                args.raw.write_text(out.read_text())
        finally:
            server.stop()
    total = sum(v for k, v in parts.items() if k != "waiting (not CPU)") or 1
    print(json.dumps({"phase": phase, "server_cpu_s": round(used, 2), "samples": parts}, indent=2))
    print("\n| part | share of the server's sampled CPU |\n|---|---|")
    for name, count in sorted(((k, v) for k, v in parts.items() if k != "waiting (not CPU)"), key=lambda kv: -kv[1]):
        print(f"| {name} | {100 * count / total:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
