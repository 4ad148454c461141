"""`--marks significance`: bold is the best and every score within noise of it, by the paired test over stored
documents (else the standard errors). tests/results/test_reported.py checks that the card's table is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_store import add_model, add_run, add_sampled_run, binary_pair

from results.leaderboard import build_leaderboard
from results.marks import Cell, significance_marks, stderr_test
from suite.store import Store
from suite.store.queries import ResultsError


def _row(lb, key):
    return next(r for r in lb.rows if r.key == key)


def test_groups_by_standard_error() -> None:
    cells = [Cell(80.0, 1.0), Cell(79.0, 1.0), Cell(70.0, 1.0), Cell(69.5, 1.0), Cell(None), Cell(60.0, 1.0)]
    # 80 vs 79: z = 0.71 -> tied; 80 vs 70: z = 7 -> not; the rest's best is 70, 69.5 within noise of it
    assert significance_marks(cells, stderr_test(0.05)) == ["best", "best", "second", "second", None, None]
    exact = [Cell(50.0), Cell(50.001), Cell(49.0)]  # no uncertainty: equal at the 2 decimals shown, as the card
    assert significance_marks(exact, stderr_test(0.05)) == ["best", "best", "second"]


def test_measured_rows_are_marked_by_the_paired_test(tmp_path: Path, tiny_model: Path) -> None:
    store = Store(tmp_path / "results.duckdb")
    a, b, c = (add_model(store, tiny_model, tmp_path, n) for n in ("A", "B", "C"))
    cloze_a, cloze_b = binary_pair(12, 1, 20, 7)  # 80.0 vs 52.5, McNemar p = 0.0034: A alone is best
    code_a, code_b = binary_pair(8, 2, 30, 10)  # 76 vs 64, p = 0.109: tied
    for model, cloze, code in ((a, cloze_a, code_a), (b, cloze_b, code_b)):
        add_sampled_run(store, model, "tiny_cloze", [cloze], metric="acc_norm")
        add_sampled_run(store, model, "tiny_code", [code])
    add_run(store, c, "tiny_code", 0.75, 0.01, suite="tiny-builtin")  # no documents stored: its stderr decides
    value = build_leaderboard(store, models=["A", "B", "C"], suite="tiny-builtin")
    lb = build_leaderboard(store, models=["A", "B", "C"], suite="tiny-builtin", marks="significance")
    assert _row(value, "tiny_code").marks == ["best", None, "second"]
    assert _row(lb, "tiny_cloze").marks == ["best", "second", None]
    assert _row(lb, "tiny_code").marks == ["best", "best", "best"]  # C: 75 +- 1 vs A's 76 +- 6.1 (stored 0.05)
    assert any(n.startswith("Marks: bold is the best score and every score within noise") for n in lb.notes)
    with pytest.raises(ResultsError, match="unknown marks 'loud'"):
        build_leaderboard(store, models=["A"], suite="tiny-builtin", marks="loud")
