"""Regression checks on constructed runs: pass within noise, fail beyond it, refuse unlike settings, CI outputs."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from results_store import add_model, add_run

from results.regress import regress, to_junit
from suite.store import Store
from suite.store.queries import ResultsError


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Store:
    """`good` matches the card's OpenSeek-Mid-v1 on mmlu/piqa; `bad` drops 5 points on gsm8k; `odd` has unlike
    settings; `base` and `cand` are two measured models 3 points apart with stderrs 1 and 2 points."""
    root = tmp_path_factory.mktemp("regress")
    store = Store(root / "results.duckdb")
    good, bad, odd, base, cand = (add_model(store, tiny_model, root, n) for n in ("good", "bad", "odd", "base",
                                                                                  "cand"))
    add_run(store, good, "mmlu", 0.7931, 0.004, shots=5, metric="acc")
    add_run(store, good, "piqa", 0.8369, 0.009, shots=5, metric="acc_norm")  # +0.50: within abs tol 1.0
    add_run(store, bad, "mmlu", 0.7900, 0.004, shots=5, metric="acc")
    add_run(store, bad, "gsm8k", 0.8416, 0.010, shots=4, metric="exact_match")  # -5.00, stderr 1.0: fails at z=2
    add_run(store, odd, "mmlu", 0.7931, 0.004, shots=0, metric="acc")  # 0-shot against the card's 5-shot
    add_run(store, odd, "piqa", 0.8319, 0.009, shots=5, limit=50, metric="acc_norm")  # a --limit run
    add_run(store, base, "hellaswag", 0.50, 0.01, shots=5, metric="acc_norm")
    add_run(store, cand, "hellaswag", 0.53, 0.02, shots=5, metric="acc_norm")
    return store


def _result(report, key):
    return next(c for c in report.results if c.benchmark == key)


def test_within_noise_passes_and_missing_is_reported(db: Store) -> None:
    report = regress(db, "good", "reported:openseek-mid-v1")
    assert report.passed and report.against == "OpenSeek-Mid-v1 (reported, openseek-mid-v1)"
    mmlu, piqa = _result(report, "mmlu"), _result(report, "piqa")
    assert (mmlu.delta, mmlu.stderr, mmlu.z, mmlu.status) == (pytest.approx(0.0), pytest.approx(0.4),
                                                              pytest.approx(0.0), "pass")
    assert piqa.delta == pytest.approx(0.5) and piqa.threshold == pytest.approx(max(1.0, 2 * 0.9))
    assert piqa.settings == "5-shot, full, acc_norm"
    assert _result(report, "gsm8k").status == "missing" and len(report.results) == 14


def test_a_drop_beyond_noise_fails(db: Store) -> None:
    report = regress(db, "bad", "reported:openseek-mid-v1")
    gsm8k = _result(report, "gsm8k")
    assert (gsm8k.delta, gsm8k.stderr, gsm8k.z) == (pytest.approx(-5.0), pytest.approx(1.0), pytest.approx(-5.0))
    assert gsm8k.status == "fail" and not report.passed
    assert _result(report, "mmlu").status == "pass"  # -0.31 points
    loose = regress(db, "bad", "reported:openseek-mid-v1", abs_tol=5.5)
    assert loose.passed
    assert regress(db, "bad", "reported:openseek-mid-v1", z=6.0).passed  # 6 x 1.0 stderr covers 5 points


def test_two_measured_models_combine_stderr(db: Store) -> None:
    report = regress(db, "cand", "model:base", abs_tol=0.0)
    hs = _result(report, "hellaswag")
    assert hs.stderr == pytest.approx(math.sqrt(1.0**2 + 2.0**2))
    assert hs.z == pytest.approx(3.0 / math.sqrt(5.0)) and hs.status == "pass"  # 3 <= 2 x 2.236
    assert _result(regress(db, "cand", "model:base", abs_tol=0.0, z=1.0), "hellaswag").status == "fail"
    assert len(report.results) == 1


def test_unlike_settings_are_refused_unless_allowed(db: Store) -> None:
    with pytest.raises(ResultsError, match=r"mmlu: 0-shot vs 5-shot.*piqa: --limit 50 vs full.*--allow-mismatch"):
        regress(db, "odd", "reported:openseek-mid-v1")
    report = regress(db, "odd", "reported:openseek-mid-v1", allow_mismatch=True)
    assert report.mismatches == ["mmlu: 0-shot vs 5-shot", "piqa: --limit 50 vs full"]
    assert _result(report, "mmlu").settings == "mmlu: 0-shot vs 5-shot"


def test_usage_errors(db: Store, store: Store) -> None:
    with pytest.raises(ResultsError, match="use reported:NAME"):
        regress(db, "good", "openseek-mid-v1")
    with pytest.raises(Exception, match="no model 'OpenSeek'; did you mean OpenSeek-Mid-v1"):
        regress(db, "good", "reported:openseek-mid-v1:OpenSeek")
    with pytest.raises(ResultsError, match="no model 'goood'.*did you mean good"):
        regress(db, "goood", "reported:openseek-mid-v1")
    with pytest.raises(ResultsError, match="no score to compare for gsm8k"):
        regress(db, "good", "reported:openseek-mid-v1", benchmarks=["gsm8k"])
    with pytest.raises(ResultsError, match="no results database"):
        regress(store, "good", "reported:openseek-mid-v1")


def test_junit_and_json(db: Store) -> None:
    report = regress(db, "bad", "reported:openseek-mid-v1")
    suite = ET.fromstring(to_junit(report)).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("14", "1", "12")
    failure = suite.find("testcase[@name='gsm8k']/failure")
    assert "delta -5.00" in failure.get("message")
    data = report.to_dict()
    assert data["passed"] is False and json.loads(json.dumps(data))["results"][0]["benchmark"] == "mmlu"


def test_cli_exit_codes(db: Store, tmp_path: Path, cli, capsys: pytest.CaptureFixture) -> None:
    base = ["regress", "--db", str(db.path), "--against", "reported:openseek-mid-v1"]
    assert cli(*base, "--model", "good", "--json", str(tmp_path / "r.json")) == 0
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True
    assert cli(*base, "--model", "bad", "--junit", str(tmp_path / "r.xml")) == 1
    out = capsys.readouterr().out
    assert "outside tolerance: gsm8k (-5.00)" in out and ET.parse(tmp_path / "r.xml").getroot().tag == "testsuites"
    assert cli(*base, "--model", "odd") == 2
    assert capsys.readouterr().err.startswith("error: refusing to compare unlike settings")
    assert cli(*base, "--model", "odd", "--allow-mismatch") == 0
