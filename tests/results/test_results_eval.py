"""Leaderboard and regress on a run made by the real evaluation path (lm-eval on the tiny model, local ARC data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_store import add_model

from results.leaderboard import build_leaderboard
from results.regress import regress
from suite.store import Store
from suite.store.queries import ResultsError

pytestmark = pytest.mark.slow  # lm-eval task preparation alone takes about a minute on the shared CPU machine


def test_real_evaluation_feeds_leaderboard_and_regress(tiny_model: Path, benchmark_mirror: Path, store: Store,
                                                       tmp_path: Path) -> None:
    """The tiny model and an identical twin, ARC-Challenge on 8 documents, both in one evaluation job."""
    from suite.eval.evaluate import EvalOptions, Evaluator

    twin_id = add_model(store, tiny_model, tmp_path, "twin")
    twin_path = store.query("SELECT path FROM models WHERE model_id = ?", [twin_id])["path"].iloc[0]
    options = EvalOptions(benchmarks=("arc_challenge",), limit=8, backend="hf", data_dir=benchmark_mirror)
    with Evaluator(options, store) as evaluator:
        (result,) = evaluator.run(tiny_model)
        (twin,) = evaluator.run(twin_path)
    assert result.status == twin.status == "finished", (result.error, twin.error)
    name = store.query("SELECT name FROM models WHERE model_id = ?", [result.model])["name"].iloc[0]

    lb = build_leaderboard(store, models=[name, "twin"])
    arc = next(r for r in lb.rows if r.key == "arc_challenge")
    assert arc.values == [pytest.approx(result.score * 100)] * 2 and arc.marks == ["best", "best"]
    assert any("arc_challenge measured on a --limit subset" in n for n in lb.notes)

    with pytest.raises(ResultsError, match="arc_challenge: --limit 8 vs full"):
        regress(store, name, "reported:openseek-mid-v1")
    report = regress(store, name, "reported:openseek-mid-v1", allow_mismatch=True, benchmarks=["arc_challenge"])
    (arc_check,) = report.results
    assert arc_check.reference == 62.12 and arc_check.stderr == pytest.approx(result.stderr * 100)
    assert arc_check.status == ("pass" if abs(result.score * 100 - 62.12) <= arc_check.threshold else "fail")

    same = regress(store, name, "model:twin", abs_tol=0.0)  # same weights, same settings: no delta
    assert same.passed and same.results[0].delta == pytest.approx(0.0)
    assert same.results[0].stderr == pytest.approx((2 * result.stderr**2) ** 0.5 * 100)
