"""deploy/build_image.sh's argument and tool checks, which run before anything is built (no buildah needed)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "build_image.sh"
BASH = shutil.which("bash")


def run(*args, path=None):
    env = {"PATH": path} if path else None
    return subprocess.run([BASH, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=30)


def test_unknown_option_prints_usage():
    out = run("--bogus")
    assert out.returncode == 2 and out.stderr.startswith("usage:") and "--new-base" in out.stderr


def test_port_needs_a_number():
    assert run("--port").returncode == 2
    assert run("--port", "http").returncode == 2


def test_missing_tool_is_named_with_its_install_command(tmp_path):
    out = run("--port", "7999", path=str(tmp_path))
    assert out.returncode == 1
    assert out.stderr.strip() == "build_image: buildah is missing: apt-get install -y buildah debootstrap iproute2"
