"""The offline training corpus: Python sources of the standard library and the pinned packages, plus
bundled prose documentation, de-duplicated, with a fixed held-out split of files.

Built once and cached as JSONL under `runs/`, so every later step (tokenizer, training, eval) reads
exactly the same files.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

# Directory names whose files are tests or vendored noise, never training text.
SKIP_DIRS = {"test", "tests", "testing", "__pycache__", "idlelib", "site-packages", "dist-packages", "_vendor"}
FORBIDDEN_MARKERS = ("HumanEval",)  # never train on the benchmark, even if a package quotes it
PROSE_SUFFIXES = (".md", ".rst", ".txt")


@dataclass
class CorpusConfig:
    """What goes into the corpus and how much of each source."""

    requirements: Path = Path("requirements.txt")
    include_stdlib: bool = True
    include_installed_docs: bool = True  # prose from every installed distribution, not only the pinned ones
    stdlib_cap_chars: int = 12_000_000  # the cleanest Python there is: take (almost) all of it
    package_cap_chars: int = 3_000_000  # per package, so transformers/torch do not drown the rest
    prose_share: float = 0.08  # prose chars as a share of code chars
    prose_package_cap_chars: int = 150_000
    max_file_chars: int = 400_000  # larger files are generated tables, not code
    val_percent: int = 2  # files whose path hash falls below this go to validation
    extra_roots: list[Path] = field(default_factory=list)  # tests and ad-hoc corpora


@dataclass
class Document:
    path: str  # stable label, e.g. "stdlib/json/decoder.py" or "pkg/transformers/..."
    kind: str  # "code" or "prose"
    text: str


def is_validation(path: str, val_percent: int) -> bool:
    """Fixed split: a file's side depends only on its label, so rebuilding never leaks files across."""
    digest = hashlib.sha1(path.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < val_percent


def requirement_names(requirements: Path) -> list[str]:
    names = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0])
    return names


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p in SKIP_DIRS or p.endswith((".dist-info", ".egg-info")) for p in parts[:-1])


def _read(path: Path, max_chars: int) -> str | None:
    try:
        if path.stat().st_size > max_chars:
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.strip() or any(marker in text for marker in FORBIDDEN_MARKERS):
        return None
    return text


def _order(labels: list[str]) -> list[str]:
    """A deterministic but shuffled order, so a per-package cap takes a mix of modules."""
    return sorted(labels, key=lambda s: hashlib.sha1(s.encode()).hexdigest())


def stdlib_files() -> dict[str, Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return {
        f"stdlib/{p.relative_to(root)}": p
        for p in root.rglob("*.py")
        if not _skipped(p.relative_to(root).parts) and not p.name.startswith("test_")
    }


def package_files(name: str, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files a distribution installed (from its RECORD), e.g. torch's Python sources."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return {}
    out = {}
    for rel in dist.files or []:
        parts = Path(rel).parts
        if str(rel).endswith(suffixes) and not _skipped(parts) and not Path(rel).name.startswith("test_"):
            out[f"pkg/{name}/{rel}"] = Path(dist.locate_file(rel))
    return out


def folder_files(root: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {f"extra/{root.name}/{p.relative_to(root)}": p for p in root.rglob("*") if p.suffix in suffixes}


def _take(files: dict[str, Path], kind: str, cap: int, max_file: int, seen: set[str]) -> Iterator[Document]:
    """Documents from `files` up to `cap` characters, skipping content already taken."""
    taken = 0
    for label in _order(list(files)):
        if taken >= cap:
            return
        text = _read(files[label], max_file)
        if text is None:
            continue
        digest = hashlib.sha1(text.encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        taken += len(text)
        yield Document(label, kind, text)


def collect(cfg: CorpusConfig) -> list[Document]:
    """All documents, code first then prose capped at `prose_share` of the code."""
    seen: set[str] = set()
    docs: list[Document] = []
    if cfg.include_stdlib:
        docs += _take(stdlib_files(), "code", cfg.stdlib_cap_chars, cfg.max_file_chars, seen)
    code_sources = [package_files(n, (".py",)) for n in requirement_names(cfg.requirements)]
    code_sources += [folder_files(r, (".py",)) for r in cfg.extra_roots]
    for files in code_sources:
        docs += _take(files, "code", cfg.package_cap_chars, cfg.max_file_chars, seen)
    # Any installed documentation is fair prose; a per-package cap keeps one verbose package from dominating.
    names = ([d.metadata["Name"] for d in importlib.metadata.distributions()] if cfg.include_installed_docs
             else requirement_names(cfg.requirements))
    prose_sources = [package_files(name, PROSE_SUFFIXES) for name in names]
    prose_sources += [folder_files(r, PROSE_SUFFIXES) for r in cfg.extra_roots]
    prose_left = int(sum(len(d.text) for d in docs) * cfg.prose_share)
    for files in sorted(prose_sources, key=lambda f: sorted(f)[:1]):
        prose = list(_take(files, "prose", min(cfg.prose_package_cap_chars, prose_left), cfg.max_file_chars, seen))
        prose_left -= sum(len(d.text) for d in prose)
        docs += prose
    return docs


def build(cfg: CorpusConfig, out_dir: Path) -> dict[str, int]:
    """Write `train.jsonl` and `val.jsonl` under `out_dir`; returns counts for the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = collect(cfg)
    stats = {"files": len(docs), "chars": 0, "val_files": 0, "prose_files": 0}
    with open(out_dir / "train.jsonl", "w") as train, open(out_dir / "val.jsonl", "w") as val:
        for doc in docs:
            is_val = is_validation(doc.path, cfg.val_percent)
            (val if is_val else train).write(json.dumps(doc.__dict__) + "\n")
            stats["chars"] += len(doc.text)
            stats["val_files"] += is_val
            stats["prose_files"] += doc.kind == "prose"
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=1))
    return stats


def read_docs(path: Path) -> Iterator[Document]:
    with open(path) as f:
        for line in f:
            yield Document(**json.loads(line))
