"""The package's shape, checked from the source (ast): no import cycles, no module over 400 lines, and the
engine free of any model library (transformers stays behind the DiffusionGemma backend)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dgemma_app"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str) -> set[str]:
    """Every module this one imports, anywhere in the file (a function-level import still runs)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package if node.level else ""
            target = ".".join(p for p in (base, node.module) if p)
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES}
    return found


def parents(name: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def graph() -> dict[str, set[str]]:
    """Edges between the package's own modules (`from . import x` in a submodule names its own package, which is
    already being imported: not an edge)."""
    return {name: {m for m in imported(name) if m in MODULES and m != name and m not in parents(name)} for name in MODULES}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


def test_a_cycle_is_found_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines"


def test_the_engine_loads_no_model_library():
    """Everything `import dgemma_app.engine` runs, package __init__ files included, imports no transformers."""
    edges = graph()
    seen, todo = set(), ["dgemma_app.engine"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(edges[name] | parents(name))
    libraries = {m: sorted(i for i in imported(m) if i.split(".")[0] == "transformers") for m in seen}
    assert not any(libraries.values()), libraries
    assert "dgemma_app.backends.diffusion_gemma" in MODULES and "transformers" in {
        i.split(".")[0] for i in imported("dgemma_app.backends.diffusion_gemma")
    }  # the check can see a transformers import where there is one


def test_only_the_ray_module_imports_ray():
    """Ray is optional: the plain app, the CLI and the page never import it; `serve_ray` is imported lazily."""
    users = sorted(m for m in MODULES if any(i.split(".")[0] == "ray" for i in imported(m)))
    assert users == ["dgemma_app.serve_ray"]
    importers = sorted(m for m in MODULES if "dgemma_app.serve_ray" in imported(m))
    assert importers == ["dgemma_app.ui"]  # inside fill_source, only when a --ray-* flag asks for it
