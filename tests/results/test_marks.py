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


def test_average_rows_are_tested_on_all_their_documents(tmp_path: Path, tiny_model: Path) -> None:
    # A leads by 3 to 4 points on each of the 4 benchmarks (200 documents each): within noise on every row, but
    # the average's paired test over all 800 documents sees it; the unpaired z-test on the averages' stderrs
    # (2.5 points each here) would not
    from results.compare import compare
    from suite.eval.significance import compare_stderr

    store = Store(tmp_path / "results.duckdb")
    a, b = (add_model(store, tiny_model, tmp_path, n) for n in ("A", "B"))
    benchmarks = {"tiny_arith_mc": ("acc", "none", (10, 4)), "tiny_cloze": ("acc_norm", "none", (12, 4)),
                  "tiny_arith_gen": ("exact_match", "strict-match", (14, 6)), "tiny_code": ("acc", "none", (16, 8))}
    for key, (metric, filter_, (only_a, only_b)) in benchmarks.items():
        pair = binary_pair(only_a, only_b, 100, 100 - only_a - only_b)
        for model, values in zip((a, b), pair):
            add_sampled_run(store, model, key, [values], metric=metric, filter_=filter_)
    lb = build_leaderboard(store, models=["A", "B"], suite="tiny-builtin", marks="significance")
    assert all(_row(lb, k).marks == ["best", "best"] for k in benchmarks)
    assert _row(lb, "avg_all").marks == ["best", "second"] and _row(lb, "avg_general").marks == ["best", "second"]
    assert any(n.startswith("Standard errors of the averages (points") and "A ±2.50" in n for n in lb.notes)
    avg = _row(lb, "avg_all").values
    assert not compare_stderr(avg[0], 2.5, avg[1], 2.5).significant  # what the averages had before: unpaired
    report = compare(store, "A", "B", suite="tiny-builtin", adjust="none")
    assert report.average.difference == pytest.approx(3.75) and report.average.p_value < 0.05  # the marks' test
    assert all(r.verdict == "no detectable difference" for r in report.rows)
