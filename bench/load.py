"""Load test: start the real server on 127.0.0.1 and send N concurrent fills through gradio_client.

    python bench/load.py --model models/dgemma-code-tiny --clients 50 --max-passes 4
    python bench/load.py --clients 1,10,30,50 --max-batch 1,32 --threads 1   # serial against batched, one run
    python bench/load.py --clients 50 --queue-size 10        # show the "queue is full" path

One server per `--max-batch` value (1 = the serial mode: one fill at a time), in turn; on each, phase 1
runs once per `--clients` value, then phases 2 and 3.

Phase 1 (load): `--clients` simulated users, each with its own gradio_client session, submit one
fill at the same moment to the `/fill` endpoint. Every request ends in one of:
completed (a filled text), rejected-as-busy ("the queue is full", the server's answer when
more than --queue-size wait), or failed (an error report, an exception, or no answer before
--time-limit). Reports the counts, p50/p95/max latency (submit to final answer) of the
completed ones and the throughput (completed fills per second, first submit to last answer).

Phase 2 (bad input): hostile requests (empty, binary, unbalanced and nested markers, over 1 MiB,
5,000 markers, unknown language, settings out of range or fractional) must each come back as
{"status": "error"} with one sentence; 600 KB of unclosed `<FILL:` around one real gap must be
served; then the server must serve a normal fill.

Phase 3 (disconnect): a separate client process starts a long fill, waits until the model is
working for it, and is killed (its connection drops). The server process' CPU use is sampled
while the fill runs and after the kill: a server that stops the generation goes back to idle.
Then one more short fill must be served normally, with a latency close to phase 1's.

Without --model (and no embedded default in models/), a random-weight tiny DiffusionGemma is built
in a temporary folder: the figures then measure the app and the queue, not a useful model.
Exit status: 0 when every request was served or told the queue is full and the disconnect check
passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dgemma_app.eval import percentile  # noqa: E402  (nearest rank, as every other benchmark)

SNIPPETS = [
    "def add(a, b):\n    return <FILL>\n",
    "import json\n\ndef dump(obj):\n    return json.<FILL:4>(obj)\n",
    "for i in range(10):\n    total += <FILL:3>\nprint(total)\n",
    "def mean(xs):\n    <EDIT>return sum(xs) / len(xs)</EDIT>\n",
]
# Long: many windows, no early stop. On the tiny model on a CPU this runs for minutes.
LONG_TEXT = "".join(f"x{i} = <FILL:16>\n" for i in range(40))
LONG_KNOBS = dict(max_passes=200, stability_threshold=64, confidence_threshold=1e-9)

CHILD = textwrap.dedent(
    """
    import sys, time
    from gradio_client import Client
    client = Client(sys.argv[1], verbose=False, analytics_enabled=False, download_files=False)
    job = client.submit(text=sys.argv[2], language="python", api_name="/fill", **{json_knobs})
    while not job.outputs():  # the first streamed update: the model is working for us
        if job.done():
            print("finished early", flush=True); sys.exit(1)
        time.sleep(0.05)
    print("started", flush=True)
    time.sleep(3600)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float) -> float:
    """Average CPU use of `pid` over the next `seconds` (1.0 = one core busy)."""
    start, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - start) / (time.monotonic() - t0)


def model_folder(requested: str | None, keep: list) -> str:
    from dgemma_app.model import DEFAULT_MODEL_DIR

    if requested:
        return requested
    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        return str(DEFAULT_MODEL_DIR)
    from dgemma_app.tiny import build_tiny_model

    folder = tempfile.TemporaryDirectory(prefix="dgemma-load-")
    keep.append(folder)
    print("load: no --model and no embedded default; using a random-weight tiny model", file=sys.stderr)
    return str(build_tiny_model(Path(folder.name) / "tiny"))


class Server:
    """`python -m dgemma_app serve` in a subprocess, its log in a file."""

    def __init__(self, model: str, port: int, concurrency: int, queue_size: int, max_batch: int, threads: int | None, log: Path):
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
        self.url = f"http://127.0.0.1:{port}/"
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dgemma_app", "serve", "--host", "127.0.0.1", "--port", str(port), "--model", model,
             "--concurrency", str(concurrency), "--queue-size", str(queue_size), "--max-batch", str(max_batch),
             *(["--threads", str(threads)] if threads else [])],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def connect(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def one_fill(client, index: int, knobs: dict, timeout: float) -> tuple[str, float, str]:
    """(outcome, seconds from submit to the final answer, detail) for one request."""
    outcome, started, ended, detail = timed_fill(client, index, knobs, timeout)
    return outcome, ended - started, detail


def timed_fill(client, index: int, knobs: dict, timeout: float) -> tuple[str, float, float, str]:
    """(outcome, perf_counter at submit, at the final answer, detail) for one request."""
    from gradio_client.utils import QueueError

    started = time.perf_counter()
    try:
        job = client.submit(text=SNIPPETS[index % len(SNIPPETS)], language="python", seed=index, api_name="/fill", **knobs)
        text, report, stats, _ = job.result(timeout=timeout)
    except QueueError as err:
        return "busy", started, time.perf_counter(), str(err)
    except Exception as err:  # noqa: BLE001 - every other ending is a failure to report
        detail = f"{type(err).__name__}: {err}"
        return ("busy" if "queue is full" in detail.lower() else "failed"), started, time.perf_counter(), detail
    ended = time.perf_counter()
    if report.get("status") == "error" and "queue is full" in report.get("message", "").lower():
        return "busy", started, ended, report["message"]
    if report.get("status") != "done" or "<FILL" in text or "<EDIT>" in text:
        return "failed", started, ended, json.dumps(report)[:200]
    return "completed", started, ended, f"{stats.get('passes')} passes"


def load_phase(url: str, clients: int, knobs: dict, time_limit: float) -> dict:
    """Each user connects (its own session; a few at a time, as the connection is not what is measured), then
    all submit at the same moment."""
    barrier = threading.Barrier(clients, timeout=time_limit)
    connecting = threading.Semaphore(4)

    def user(index: int):
        try:
            with connecting:
                client = connect(url)
        except Exception as err:  # noqa: BLE001
            barrier.abort()
            return "failed", 0.0, 0.0, f"connect: {type(err).__name__}: {err}"
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return "failed", 0.0, 0.0, "another user could not connect"
        return timed_fill(client, index, knobs, time_limit)

    load_average = os.getloadavg()[0]
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(user, range(clients)))
    latencies = [end - start for outcome, start, end, _ in outcomes if outcome == "completed"]
    counts = {k: sum(o[0] == k for o in outcomes) for k in ("completed", "busy", "failed")}
    failures = sorted({d for o, _, _, d in outcomes if o == "failed"})[:5]
    submitted = [start for o, start, _, _ in outcomes if start]
    wall = max((end for _, _, end, _ in outcomes), default=0.0) - min(submitted, default=0.0)
    return {
        "clients": clients,
        **counts,
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(percentile(latencies, 95), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "fills_per_s": round(counts["completed"] / wall, 2) if wall > 0 else None,
        "busy_answer_s": round(max((end - start for o, start, end, _ in outcomes if o == "busy"), default=0.0), 3),
        "wall_s": round(wall, 2),
        "load_average_1min": round(load_average, 2),
        "failures": failures,
    }


# name: /fill arguments that must end in {"status": "error", "message": <one sentence>}. Lone
# surrogates and NaN are covered by tests/test_fuzz.py: gradio_client cannot send them as JSON.
BAD_REQUESTS = {
    "empty": dict(text=""),
    "no markers": dict(text="x = 1\n"),
    "binary": dict(text="\x00\x01ELF<FILL>\x00\x02"),
    "unbalanced": dict(text="x = <EDIT>1\n"),
    "nested": dict(text="<EDIT>a <FILL> b</EDIT>\n"),
    "bad size": dict(text="x = <FILL:0>\n"),
    "over 1 MiB": dict(text="x = <FILL>\n" + "#" * (1 << 20)),
    "5,000 markers": dict(text="x = <FILL:1>\n" * 5000),
    "unknown language": dict(text="x = <FILL>\n", language="cobol"),
    "max_passes 0": dict(text="x = <FILL>\n", max_passes=0),
    "candidates 1.5": dict(text="x = <FILL>\n", candidates=1.5),
    "t_min above t_max": dict(text="x = <FILL>\n", t_max=0.2, t_min=0.5),
    "entropy bound -1": dict(text="x = <FILL>\n", entropy_bound=-1.0),
}
# Hostile but valid: served (the unclosed `<FILL:` are plain text, cut from the far left to fit the
# model's context), and quickly: the marker scan is linear.
HOSTILE_VALID = {"600 KB of unclosed <FILL:": dict(text="<FILL:" * 100_000 + "\n<FILL>")}


def bad_input_phase(url: str, knobs: dict, time_limit: float) -> dict:
    """Hostile requests through the API: each must be answered with a clear error, and the server
    must serve a normal fill afterwards."""
    client = connect(url)
    clear, unexpected = 0, {}
    for name, arguments in BAD_REQUESTS.items():
        arguments = {"language": "python", **arguments}
        try:
            _, report, _, _ = client.submit(api_name="/fill", **arguments).result(timeout=time_limit)
        except Exception as err:  # noqa: BLE001
            unexpected[name] = f"{type(err).__name__}: {str(err)[:120]}"
            continue
        message = report.get("message", "")
        if report.get("status") == "error" and message and "\n" not in message and "unexpectedly" not in message:
            clear += 1
        else:
            unexpected[name] = json.dumps(report)[:160]
    served = {}
    for name, arguments in HOSTILE_VALID.items():
        started = time.perf_counter()
        try:
            _, report, _, _ = client.submit(api_name="/fill", language="python", **knobs, **arguments).result(timeout=time_limit)
            served[name] = f"{report.get('status')} in {time.perf_counter() - started:.1f} s"
        except Exception as err:  # noqa: BLE001
            unexpected[name] = f"{type(err).__name__}: {str(err)[:120]}"
    outcome, seconds, detail = one_fill(client, 1, knobs, time_limit)
    return {"requests": len(BAD_REQUESTS), "clear_errors": clear, "unexpected": unexpected, "served": served,
            "next_fill": outcome, "next_fill_s": round(seconds, 3)}


def disconnect_phase(server: Server, knobs: dict, baseline: float | None, time_limit: float) -> dict:
    pid = server.proc.pid
    idle = cpu_share(pid, 1.0)
    script = CHILD.replace("{json_knobs}", repr(LONG_KNOBS))
    child = subprocess.Popen(
        [sys.executable, "-c", script, server.url, LONG_TEXT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out: dict = {"server_cpu_idle": round(idle, 2)}
    try:
        line = ""
        deadline = time.monotonic() + time_limit
        while time.monotonic() < deadline and not line:
            line = child.stdout.readline().strip()
            if child.poll() is not None and not line:
                break
        if line != "started":
            out["error"] = f"the long fill did not start: {line or child.stderr.read()[-500:]}"
            return out
        out["server_cpu_while_filling"] = round(cpu_share(pid, 2.0), 2)
    finally:
        child.kill()  # the connection drops without a goodbye, like a closed laptop
        child.wait()
    killed = time.monotonic()
    time.sleep(2.0)  # the server notices the dropped stream, the model stops at its next pass
    out["server_cpu_after_disconnect"] = round(cpu_share(pid, 3.0), 2)
    outcome, seconds, detail = one_fill(connect(server.url), 0, knobs, time_limit)
    out["next_fill"] = outcome
    out["next_fill_s"] = round(seconds, 3)
    out["next_fill_after_disconnect_s"] = round(time.monotonic() - killed, 2)
    busy = out["server_cpu_while_filling"]
    after = out["server_cpu_after_disconnect"]
    # Stopped: after the disconnect the server uses under a third of what the fill used (and under
    # half a core), and the next request is served like the ones in phase 1.
    out["generation_stopped"] = after < max(0.5, idle + 0.2) and after < busy / 3
    out["next_fill_normal"] = outcome == "completed" and (baseline is None or seconds < max(3 * baseline, baseline + 5))
    if outcome != "completed":
        out["next_fill_detail"] = detail
    return out


def serve_and_load(args: argparse.Namespace, model: str, max_batch: int, knobs: dict) -> dict:
    """One server with `max_batch`: every load phase of --clients, then the bad-input and disconnect phases."""
    port = args.port or free_port()
    log = Path(tempfile.gettempdir()) / f"dgemma-load-server-{port}.log"
    server = Server(model, port, args.concurrency, args.queue_size, max_batch, args.threads, log)
    figures: dict = {"max_batch": max_batch}
    try:
        started = time.perf_counter()
        server.wait_ready(args.time_limit)
        figures["server_start_s"] = round(time.perf_counter() - started, 1)
        one_fill(connect(server.url), 0, knobs, args.time_limit)  # warm-up, not counted (the first pass imports)
        figures["load"] = [load_phase(server.url, clients, knobs, args.time_limit) for clients in args.clients]
        figures["bad_input"] = bad_input_phase(server.url, knobs, args.time_limit)
        if not args.no_disconnect:
            figures["disconnect"] = disconnect_phase(server, knobs, figures["load"][0]["p50_s"], args.time_limit)
        figures["server_alive"] = server.proc.poll() is None
    except Exception as err:  # noqa: BLE001
        figures["error"] = f"{type(err).__name__}: {err}"
    finally:
        server.stop()
        figures["server_log_tail"] = server.tail(8)
    return figures


def served_well(figures: dict, args: argparse.Namespace) -> bool:
    disconnect, bad, loads = figures.get("disconnect", {}), figures.get("bad_input", {}), figures.get("load", [])
    return (
        bad.get("clear_errors") == bad.get("requests") and not bad.get("unexpected") and bad.get("next_fill") == "completed"
        and all(v.startswith("done") for v in bad.get("served", {}).values()) and "error" not in figures
        and len(loads) == len(args.clients) and all(load["failed"] == 0 and load["completed"] + load["busy"] == load["clients"] for load in loads)
        and figures.get("server_alive") and (args.no_disconnect or (disconnect.get("generation_stopped") and disconnect.get("next_fill_normal")))
    )


def table(servers: list[dict]) -> str:
    """The load phases as a Markdown table."""
    lines = ["| max batch | clients | completed | busy | failed | p50 s | p95 s | max s | fills/s | load avg |", "|" + "---|" * 10]
    for figures in servers:
        mode = "1 (serial)" if figures["max_batch"] == 1 else str(figures["max_batch"])
        for load in figures.get("load", []):
            lines.append(f"| {mode} | {load['clients']} | {load['completed']} | {load['busy']} | {load['failed']} | {load['p50_s']} | "
                         f"{load['p95_s']} | {load['max_s']} | {load['fills_per_s']} | {load['load_average_1min']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    int_list = lambda raw: [int(v) for v in raw.split(",")]  # noqa: E731 - "1,10,30" -> [1, 10, 30]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder or cached hub id (default: the embedded model, else a random tiny one)")
    parser.add_argument("--clients", type=int_list, default=[50], help="concurrent users in the load phase, comma-separated for several phases (default 50)")
    parser.add_argument("--max-batch", type=int_list, default=[32], help="server --max-batch, comma-separated for one server each (default 32; 1 = serial)")
    parser.add_argument("--max-passes", type=int, default=4, help="denoising passes per fill (default 4)")
    parser.add_argument("--concurrency", type=int, default=1, help="server --concurrency (default 1)")
    parser.add_argument("--queue-size", type=int, default=64, help="server --queue-size (default 64)")
    parser.add_argument("--threads", type=int, help="server --threads (default: torch's choice; 1 on a busy machine)")
    parser.add_argument("--port", type=int, help="default: a free port")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds any one phase may take (default 300)")
    parser.add_argument("--no-disconnect", action="store_true", help="skip the disconnect phase")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not all(1 <= c <= 500 for c in args.clients):
        parser.error("--clients must be between 1 and 500")

    keep: list = []
    model = model_folder(args.model, keep)
    knobs = {"max_passes": args.max_passes}
    figures: dict = {"model": model, "concurrency": args.concurrency, "queue_size": args.queue_size, "max_passes": args.max_passes,
                     "cpus": os.cpu_count(), "servers": [serve_and_load(args, model, m, knobs) for m in args.max_batch]}
    print(json.dumps(figures, indent=2))
    print(table(figures["servers"]))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if all(served_well(f, args) for f in figures["servers"]) else 1


if __name__ == "__main__":
    sys.exit(main())
