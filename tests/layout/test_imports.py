"""The dependency order, read from the source: each package imports only from its own layer or the layers below.

    growth.foundation  <  growth  <  training  <  suite.store, suite.sandbox  <  suite.eval  <  suite.select
                       <  results  <  suite.pipeline  <  suite.study  <  suite.cli

results sits above the evaluation parts of suite but below the pipeline and the CLI, so the order is checked per
sub-package. Every import counts, wherever it stands: at module level, inside a function (a lazy import is still a
dependency), under `if TYPE_CHECKING:` or inside a `try:`. The same imports must form no cycle between files: a
cycle hidden in a lazy import is still two modules that cannot be understood one without the other. The checks are
functions of a source tree, so the tests at the bottom plant violations in a scratch tree and see them caught.
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
    ("suite.store", "suite.sandbox"),
    ("suite.eval",),
    ("suite.select",),
    ("results",),
    ("suite.pipeline",),
    ("suite.study",),
    ("suite.cli",),
    ("bench",),
]
APART = [("suite.store", "suite.sandbox"), ("suite.sandbox", "suite.store")]
"""Rooms on one line of the order that must not import each other."""


def layer_of(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    assert best is not None, f"{module} belongs to no layer; add it to LAYERS"
    return best[0]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(root: Path) -> dict[str, Path]:
    """Every module of the packages under `root`, by dotted name."""
    return {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def imported_modules(path: Path, me: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in its text (functions, TYPE_CHECKING, try blocks included):
    `from pkg.mod import name` counts as pkg.mod, or as pkg.mod.name when that is a module; relative imports are
    resolved against `me`."""
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.split(".")[0] in PACKAGES:
                found.add(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports (a package's __init__ counts when it is imported by name)."""
    modules = sources(root)
    return {me: {m for m in imported_modules(path, me, modules) if m != me and not me.startswith(m + ".")}
            for me, path in modules.items()}


def order_violations(root: Path) -> list[str]:
    wrong = set()
    for me, deps in import_graph(root).items():
        for imp in deps:
            if layer_of(imp) > layer_of(me) or any(me.startswith(a) and imp.startswith(b) for a, b in APART):
                wrong.add(f"{me} imports {imp}")
    return sorted(wrong)


def cycles(root: Path) -> list[str]:
    """Every file-level import cycle, each reported once (as found by a depth-first walk)."""
    graph = import_graph(root)
    state: dict[str, int] = {}
    found = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_every_import_points_down_the_layers() -> None:
    wrong = order_violations(ROOT)
    assert not wrong, "imports against the dependency order:\n" + "\n".join(wrong)


def test_no_import_cycles_between_files() -> None:
    found = cycles(ROOT)
    assert not found, "import cycles:\n" + "\n".join(found)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    return tmp_path


def test_a_cycle_planted_in_nested_and_lazy_imports_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "training/a.py": "try:\n    from training.b import x\nexcept ImportError:\n    pass\n",
        "training/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from training import c\n",
        "training/c.py": "def f():\n    from .a import y\n    return y\n",
    })
    assert cycles(root) == ["training.a -> training.b -> training.c -> training.a"]
    assert order_violations(root) == []


def test_an_upward_lazy_import_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "growth/op.py": "def grow():\n    if True:\n        import suite.store.db\n",
        "suite/store/db.py": "",
        "suite/sandbox/run.py": "class A:\n    def m(self):\n        from suite.store import db\n",
    })
    assert order_violations(root) == ["growth.op imports suite.store.db", "suite.sandbox.run imports suite.store.db"]
    assert cycles(root) == []
