"""deploy/build_image.sh's argument and tool checks, which run before anything is built (no buildah needed)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "build_image.sh"
BASH = shutil.which("bash")


def run(*args, path=None, **env_vars):
    env = {"PATH": path or os.environ["PATH"], **env_vars} if path or env_vars else None
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


def test_mirror_comes_from_the_machines_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb file:///srv/security bookworm-security main\ndeb [arch=amd64] file:///srv/one-line bookworm main\n")
    assert run("--print-mirror", APT_ETC=str(tmp_path)).stdout.strip() == "file:///srv/one-line"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: file:///srv/security\nSuites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: file:///srv/deb822 file:///srv/other\nSuites: bookworm bookworm-updates\n"
    )
    assert run("--print-mirror", APT_ETC=str(tmp_path)).stdout.strip() == "file:///srv/deb822"  # deb822 sources first
    assert run("--print-mirror", APT_ETC=str(tmp_path), DEBIAN_MIRROR="file:///srv/given").stdout.strip() == "file:///srv/given"


def test_no_mirror_anywhere_is_a_clear_error(tmp_path):
    out = run("--print-mirror", APT_ETC=str(tmp_path))
    assert out.returncode == 1 and out.stderr.strip() == "build_image: no Debian mirror: set DEBIAN_MIRROR, or add one to this machine's apt sources"


def test_no_mirror_host_is_written_in_the_script():
    assert "debian.org" not in SCRIPT.read_text()
