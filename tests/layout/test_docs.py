"""The README's architecture map and docs/ARCHITECTURE.md say what the code does: the same dependency order as the
import test, and every room they name exists while every room that exists is named."""

from __future__ import annotations

import re

from test_imports import LAYERS, ROOT

DOCS = {"README.md": ROOT / "README.md", "docs/ARCHITECTURE.md": ROOT / "docs" / "ARCHITECTURE.md"}


def stated_order(text: str) -> list[tuple[str, ...]]:
    """The fenced block that starts with `growth.foundation  <`, as layers of module names."""
    block = re.search(r"```\n(growth\.foundation\s+<.*?)```", text, re.S)
    assert block, "no dependency-order block"
    return [tuple(m.strip() for m in layer.split(",")) for layer in " ".join(block[1].split()).split("<")]


def rooms() -> set[str]:
    """Every package folder of the rooms: growth/foundation, growth, training, results and suite's sub-packages."""
    found = {"growth/foundation/", "growth/", "training/", "results/"}
    found |= {f"suite/{p.parent.name}/" for p in (ROOT / "suite").glob("*/__init__.py")}
    return found


def test_docs_state_the_checked_dependency_order() -> None:
    checked = [layer for layer in LAYERS if layer != ("bench",)]
    for name, path in DOCS.items():
        assert stated_order(path.read_text()) == checked, f"{name} disagrees with tests/layout/test_imports.py"


def test_docs_name_every_room_and_only_rooms_that_exist() -> None:
    for name, path in DOCS.items():
        text = path.read_text()
        named = set(re.findall(r"\b((?:growth|training|results|suite)/(?:[a-z_]+/)?)", text))
        missing = rooms() - named
        assert not missing, f"{name} does not name {sorted(missing)}"
        stale = {r for r in named if r.count("/") == 2 and r.startswith("suite/") and not (ROOT / r).is_dir()}
        assert not stale, f"{name} names rooms that do not exist: {sorted(stale)}"
