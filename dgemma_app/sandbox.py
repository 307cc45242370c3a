"""Running model-written code: an isolated `python -I` child in a fresh temporary folder, memory-capped,
its whole process group killed when it runs past its time. Never in this process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROGRAM_TIMEOUT_S = 3.0  # the original HumanEval harness's limit
PROGRAM_MEMORY_BYTES = 2 << 30


@dataclass(frozen=True)
class ProgramOutcome:
    passed: bool
    status: str  # "passed" | "failed" | "timeout"
    seconds: float


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PROGRAM_MEMORY_BYTES, PROGRAM_MEMORY_BYTES))


def run_program(source: str, timeout: float = PROGRAM_TIMEOUT_S) -> ProgramOutcome:
    """Run model-written code in an isolated `python -I` child in a fresh temporary folder; kill its whole
    process group when it runs past `timeout` seconds."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dgemma-eval-") as folder:
        script = Path(folder) / "program.py"
        script.write_text(source, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0", "HOME": folder, "TMPDIR": folder}
        child = subprocess.Popen(
            [sys.executable, "-I", str(script)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_limit_memory,
        )
        try:
            code = child.wait(timeout=timeout)
            status = "passed" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            status = "timeout"
    return ProgramOutcome(status == "passed", status, round(time.perf_counter() - started, 3))
