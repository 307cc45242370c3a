"""Does the web app's live view slow the model? The same fills with and without it, in one run.

    python -m bench.streaming [--model DIR] [--tasks 20] [--threads N]

"engine only": `Engine.fill` in a fresh thread per fill, as the app runs it, nothing drawn. "web app path": the
app's `Service.run`, which streams passes from its worker thread at most every 0.1 s, each drawn as the page
draws it. The two take turns task by task. As in the app, no model work runs on the main thread: torch ran
much slower in a thread while another live thread had run it before, which would skew the comparison.
"""
from __future__ import annotations

import statistics
import threading
import time
from dataclasses import asdict
from typing import Callable, TypeVar

from bench.common import base_parser, header, table
from dgemma_app import eval as ev
from dgemma_app.results import FillResult
from dgemma_app.ui import render
from dgemma_app.ui.service import Progress, Service
from dgemma_app.wiring import load_from_args, settings_from_args

T = TypeVar("T")


def in_thread(job: Callable[[], T]) -> T:
    """Run `job` in a new thread and return its result: model work off the main thread, as in the app."""
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("result", job()))
    worker.start()
    worker.join()
    return out["result"]


def streamed(service: Service, text: str, overrides: dict) -> tuple[FillResult, int]:
    """A fill as the page gets it, each live pass drawn; returns the result and how many live updates came."""
    drawn = 0
    for update in service.run(service.request(text, "python"), overrides):
        if not isinstance(update, Progress):
            return update, drawn
        if update.latest is not None:
            render.canvas(update.latest, "live")
            drawn += 1
    raise RuntimeError("the service ended without a result")


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    service = Service(lambda: load_from_args(args), args.model)
    engine = in_thread(service.engine)  # the model loads off the main thread, as in the app
    settings = settings_from_args(engine.loaded, args)
    overrides = asdict(settings)
    tasks = ev.load_set("single-line", args.data, args.tasks)
    modes = {
        "engine only (fresh thread per fill)": lambda text: (in_thread(lambda: engine.fill(text, "python", settings)), 0),
        "web app path (streamed, drawn)": lambda text: streamed(service, text, overrides),
    }
    seconds = {name: [] for name in modes}
    updates = {name: 0 for name in modes}
    for fill in modes.values():
        fill(tasks[0].marked())  # warm-up
    for task in tasks:
        for name, fill in modes.items():
            started = time.perf_counter()
            _, drawn = fill(task.marked())
            seconds[name].append(time.perf_counter() - started)
            updates[name] += drawn
    print(f"# streaming — single-line, {len(tasks)} tasks — {header(args, engine, settings)}\n")
    print(table(
        ["path", "fills", "p50 s", "mean s", "p95 s", "live updates drawn"],
        [[name, len(tasks), statistics.median(s), statistics.mean(s), ev.percentile(s, 95), updates[name]] for name, s in seconds.items()],
    ))
    direct, web = (statistics.median(s) for s in seconds.values())
    print(f"\nweb app path ÷ engine only (p50): {web / direct:.2f}x")


if __name__ == "__main__":
    main()
