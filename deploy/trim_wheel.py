"""Trim the transformers wheel to the model families this app loads, so more corpus travels to a GPU machine.

    python deploy/trim_wheel.py .whl/transformers-5.23.0-py3-none-any.whl

The wheel holds every model family (13.3 MB of 5.23's); a device run carries it beside the repo and the corpus in
64 MiB. Kept: `models/auto` (the Auto classes), the families named in KEEP, and every family their modules import
(`from ..family`), except the `modular_*.py` sources, which are code generators, not runtime modules. The
wheel's RECORD loses the removed files' lines, and the wheel is rewritten in place (2.3 MB for 5.23).
"""
from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

KEEP = ("diffusion_gemma", "gemma4", "encoder_decoder")  # the model, its vision config's family, AutoTokenizer's import
MODELS = "transformers/models/"


def families(names: list[str], keep: tuple[str, ...], read) -> set[str]:
    """`keep`, `auto` and every family their non-modular modules import, from the wheel's file `names`."""
    found, todo = {"auto"}, list(keep)
    while todo:
        family = todo.pop()
        if family in found:
            continue
        found.add(family)
        for name in names:
            if name.startswith(f"{MODELS}{family}/") and name.endswith(".py") and "/modular_" not in name:
                todo += re.findall(r"from \.\.([a-z0-9_]+)", read(name))
    return found


def trim(wheel: Path, keep: tuple[str, ...] = KEEP) -> tuple[int, int]:
    """Rewrite `wheel` without the other model families; returns (files removed, bytes after)."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        kept = families(names, keep, lambda n: z.read(n).decode("utf-8"))

        def wanted(name: str) -> bool:
            if not name.startswith(MODELS) or name.count("/") < 3:  # not inside a family folder
                return True
            return name[len(MODELS):].split("/", 1)[0] in kept

        out, removed = wheel.with_suffix(".tmp"), [n for n in names if not wanted(n)]
        gone = set(removed)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as w:
            for info in z.infolist():
                if info.filename in gone:
                    continue
                data = z.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    lines = data.decode().splitlines(keepends=True)
                    data = "".join(line for line in lines if line.split(",", 1)[0] not in gone).encode()
                w.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    out.replace(wheel)
    return len(removed), wheel.stat().st_size


if __name__ == "__main__":
    for path in sys.argv[1:]:
        count, size = trim(Path(path))
        print(f"{path}: {count} files of other model families removed, {size:,} bytes")
