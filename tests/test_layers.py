"""Imports flow one way (DESIGN.md §1): cli -> runner (sweep/search -> plan/executors/summary ->
single -> config/rundir) -> experiments -> contract/signals -> library. Every neurosim module
imports, no module imports one of a higher layer, and the graph has no circle."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import neurosim

ROOT = Path(neurosim.__file__).resolve().parent

#: Layer of each module above the library (0); a module may import its own layer or lower.
LAYERS = {
    "neurosim.runner": 1,  # the package itself holds no code
    "neurosim.runner.contract": 1,  # what an experiment is given and returns
    "neurosim.runner.signals": 1,  # Stopped, which an experiment may raise
    "neurosim.experiments": 2,
    "neurosim.runner.config": 3,
    "neurosim.runner.rundir": 3,
    "neurosim.runner.single": 4,
    "neurosim.runner.plan": 5,
    "neurosim.runner.executors": 5,
    "neurosim.runner.summary": 5,
    "neurosim.runner.sweep": 6,
    "neurosim.runner.search": 6,
    "neurosim.cli": 7,
    "neurosim.run": 8,
}


def layer(module: str) -> int:
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return LAYERS[best] if best else 0


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The neurosim modules `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_no_import_goes_up_a_layer():
    upward = [f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps if layer(b) > layer(a)]
    assert upward == []


def test_the_library_never_imports_the_runner_or_the_cli():
    library = [m for m in GRAPH if layer(m) == 0]
    assert "neurosim.ann.train" in library and "neurosim.spikes" in library
    reach = [f"{a} -> {b}" for a in library for b in GRAPH[a]
             if b.startswith(("neurosim.runner", "neurosim.cli", "neurosim.run"))]
    assert reach == []


def test_the_import_graph_has_no_circle():
    """Depth-first search: an edge back to a module still on the stack closes a circle."""
    on_stack: list[str] = []
    done: set[str] = set()
    circles: list[str] = []

    def visit(node: str) -> None:
        on_stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt in on_stack:
                circles.append(" -> ".join([*on_stack[on_stack.index(nxt):], nxt]))
            elif nxt not in done:
                visit(nxt)
        on_stack.pop()
        done.add(node)

    for node in sorted(GRAPH):
        if node not in done:
            visit(node)
    assert circles == []


def test_every_package_and_module_is_found():
    names = {m.name for m in pkgutil.walk_packages([str(ROOT)], "neurosim.")}
    assert names <= set(GRAPH) | {"neurosim"}
    assert {"neurosim.cli", "neurosim.runner.sweep", "neurosim.runner.contract"} <= set(GRAPH)
