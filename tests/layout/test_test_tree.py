"""tests/ mirrors the rooms, and its files import one another by bare name (pytest's rootdir-relative `prepend`
mode, no __init__.py), so two test files with one basename in different rooms would shadow each other."""

from __future__ import annotations

from collections import Counter

from test_imports import ROOT


def test_every_test_file_has_its_own_basename() -> None:
    names = Counter(p.name for p in (ROOT / "tests").rglob("*.py") if p.name != "conftest.py")
    assert not [n for n, count in names.items() if count > 1], "test files sharing a basename: " + ", ".join(
        sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py") if names[p.name] > 1))
