"""The dependency order, read from the source: each package imports only from its own layer or the layers below.

    growth.foundation  <  growth  <  training  <  suite.store, suite.code  <  suite.eval  <  suite.select
                       <  results  <  suite.pipeline, suite.cli

results sits above the evaluation parts of suite but below the pipeline and the CLI, so the order is checked per
sub-package. Imports inside functions count too (a lazy import is still a dependency); module-level imports must
also form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("growth", "training", "suite", "results", "bench")
LAYERS = [
    ("growth.foundation",),
    ("growth",),
    ("training",),
    ("suite.store", "suite.code"),
    ("suite.eval",),
    ("suite.select",),
    ("results",),
    ("suite.pipeline", "suite.cli"),
    ("bench",),
]
APART = [("suite.store", "suite.code"), ("suite.code", "suite.store"), ("suite.pipeline", "suite.cli")]
"""Rooms on one line of the order that must not import each other (the CLI calls the pipeline, never the reverse)."""


def layer_of(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    assert best is not None, f"{module} belongs to no layer; add it to LAYERS"
    return best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_import_points_down_the_layers() -> None:
    modules = {module_name(p) for p in sources()}
    wrong = set()
    for path in sources():
        me = module_name(path)
        for imp in project_imports(path, top_level_only=False):
            if imp not in modules and imp.rsplit(".", 1)[0] in modules:
                imp = imp.rsplit(".", 1)[0]  # `from pkg.mod import name`
            if layer_of(imp) > layer_of(me) or any(me.startswith(a) and imp.startswith(b) for a, b in APART):
                wrong.add(f"{me} imports {imp}")
    assert not wrong, "imports against the dependency order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_at_module_level() -> None:
    modules = {module_name(p): p for p in sources()}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imp in project_imports(path, top_level_only=True):
            while imp and imp not in modules:
                imp = imp.rpartition(".")[0]
            if imp and imp != name and not name.startswith(imp + "."):
                deps.add(imp)
        graph[name] = deps
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]) if dep in stack else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
