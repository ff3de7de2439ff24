"""The package reads as its pipeline, and imports point one way.

Walks every module's imports (``ast``; inside functions too) and checks them against the
layering: config and data at the bottom, the network math in the middle, the run store,
experiment and sweeps above it, reports above that, the CLI on top. A forbidden arrow or
an import cycle fails with the modules and lines that make it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dropcli"

# Which steps of the pipeline each step may import ("errors" and "version" are free to all).
ALLOWED = {
    "errors": set(),
    "version": set(),
    "config": set(),
    "data": {"config"},
    "nn": set(),
    "train": {"nn"},
    "evidence": {"nn"},
    "store": {"config"},
    "experiment": {"config", "data", "nn", "train", "evidence", "store"},
    "sweep": {"experiment", "store", "config"},
    "report": {"store", "evidence.stats"},
    "cli": {"*"},
    "__main__": {"cli"},
    "__init__": {"*"},  # the lazy re-exports for notebooks
}
FREE = {"errors", "version"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every dropcli module ``name`` imports. ``from P import x``
    counts as importing ``P.x`` when that is a module, else ``P`` itself."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name[len("dropcli."):], node.lineno) for a in node.names if a.name.startswith("dropcli.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = [] if name == "__init__" else name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "dropcli" or (node.module or "").startswith("dropcli."):
                module = node.module[len("dropcli."):] if node.module != "dropcli" else ""
            else:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}" if module else alias.name
                found.append((sub if sub in MODULES else module or "__init__", node.lineno))
    return found


EDGES = {name: _imports(name, path) for name, path in MODULES.items()}


def _step(module: str) -> str:
    return module.split(".")[0]


def test_the_top_level_reads_as_the_pipeline():
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "_")) and p.name != "__pycache__")
    assert top == ["cli", "config", "data", "errors.py", "evidence", "experiment", "nn", "report", "store",
                   "sweep", "train", "version.py"]


def test_imports_follow_the_pipeline():
    wrong = []
    for name, edges in EDGES.items():
        step = _step(name)
        allowed = ALLOWED[step]
        for target, line in edges:
            to = _step(target)
            if to in FREE or to == step or "*" in allowed or to in allowed or target in allowed:
                continue
            wrong.append(f"dropcli/{MODULES[name].relative_to(PACKAGE)}:{line}: {step} -> {target}")
    assert not wrong, "imports against the pipeline:\n" + "\n".join(wrong)


def test_nothing_imports_its_own_packages_init():
    wrong = []
    for name, edges in EDGES.items():
        if MODULES[name].name == "__init__.py":
            continue
        package = name.rsplit(".", 1)[0] if "." in name else "__init__"
        for target, line in edges:
            if target == package and MODULES.get(target, Path()).name == "__init__.py":
                wrong.append(f"dropcli/{MODULES[name].relative_to(PACKAGE)}:{line} imports its own package's __init__")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle():
    graph = {name: sorted({t for t, _ in edges if t in MODULES and t != name}) for name, edges in EDGES.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 400, f"dropcli/{MODULES[name].relative_to(PACKAGE)}: {lines} lines; does it hold two rooms?"
