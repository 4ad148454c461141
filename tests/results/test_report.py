"""The report page: built from a store holding a whole lineage, then opened in a real headless Chromium."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from browser import overflowing, visit
from results_store import add_model, add_run, variant

from results.report import ReportOptions, find_lineage, render_report, write_report
from suite.store import Store
from suite.store.queries import ResultsError

STEPS = (100, 200, 300, 400)
SCORES = {"mmlu": (0.30, 0.35, 0.40, 0.45), "gsm8k": (0.10, 0.20, 0.15, 0.25), "hellaswag": (0.50, 0.52, 0.55, 0.56)}
MERGED = {"mmlu": 0.48, "gsm8k": 0.27, "hellaswag": 0.57}


# the selector's record as merge.json keeps it (suite/select/strategies/anchors.py writes this shape)
RECIPE = {"method": "linear", "normalize": True, "models": [
    {"path": "b", "weight": 0.6, "name": "r1@400", "role": "knowledge",
     "evidence": {"mmlu": 0.45, "rank": 1, "decided_by": "beats every other free checkpoint beyond noise"}},
    {"path": "a", "weight": 0.4, "name": "r1@200", "role": "math",
     "evidence": {"gsm8k": 0.20, "rank": 2, "decided_by": "tie-break later: 2 checkpoints within noise"}}],
    "selection": {"strategy": "anchors", "suite": "openseek-mid-v1",
                  "candidates": [{"name": f"r1@{s}"} for s in STEPS],
                  "roles": [{"role": "knowledge", "metric": "mmlu", "weight": 0.6},
                            {"role": "math", "metric": "gsm8k", "weight": 0.4}],
                  "split": {"kind": "suite runs", "suite": "openseek-mid-v1", "documents": {"mmlu": [100], "gsm8k": [100]},
                            "note": "the same runs and documents the leaderboard shows"},
                  "scores": {k: {f"r1@{s}": v for s, v in zip(STEPS, SCORES[k])} for k in ("mmlu", "gsm8k")}}}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Store:
    """seed s0 -> grown g0 (its intermediate stage w0 beside it) -> run r1 (steps 100..400, metrics.jsonl) -> merged-final = 0.4 x @200 + 0.6 x @400."""
    root = tmp_path_factory.mktemp("report")
    store = Store(root / "results.duckdb")
    seed = store.register_model(variant(tiny_model, root, "s0"), kind="seed", name="s0")
    store.register_model(variant(tiny_model, root, "w0"), kind="grown", name="w0", parents=[seed])  # a grow's stage
    grown = store.register_model(variant(tiny_model, root, "g0"), kind="grown", name="g0", parents=[seed])
    ids = []
    for i, step in enumerate(STEPS):
        training = {"run_id": "r1", "step": step, "tokens": step * 2_000_000, "stage": "stage1",
                    "parent_fingerprint": grown}
        ids.append(add_model(store, tiny_model, root, f"r1/checkpoints/step-{step:06d}", training=training))
        for key, values in SCORES.items():
            add_run(store, ids[-1], key, values[i], 0.01)
    for key, values in SCORES.items():
        add_run(store, seed, key, values[0] - 0.05, 0.01)
    rows = [{"step": s, "tokens": s * 2_000_000, "stage": "stage1" if s <= 300 else "stage2",
             "loss": 3.0 + 5.0 * math.exp(-s / 80), "lr": 3e-4 * min(1.0, s / 40), "grad_norm": 1.0,
             "tokens_per_s": 1e5} for s in range(10, 401, 10)]
    (root / "r1" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    merge = {"method": "linear", "models": [{"path": "a", "fingerprint": ids[1], "weight": 0.4},
                                            {"path": "b", "fingerprint": ids[3], "weight": 0.6}], "recipe": RECIPE}
    merged = add_model(store, tiny_model, root, "merged-final", merge=merge)
    for key, value in MERGED.items():
        add_run(store, merged, key, value, 0.01)
    return store


def test_lineage_follows_parents_and_merge_weights(db: Store) -> None:
    lineage = find_lineage(db, None)  # the only (so the latest) training run
    assert lineage.run == "r1"
    assert [[m["name"] for m in gen] for gen in lineage.ancestors] == [["s0"], ["w0", "g0"]]
    assert [m["step"] for m in lineage.checkpoints] == list(STEPS)
    assert [m["name"] for m in lineage.merged] == ["merged-final"]
    assert sorted(lineage.weights[lineage.merged[0]["model_id"]].values()) == [0.4, 0.6]
    with pytest.raises(ResultsError, match="no training run 'r2'.*did you mean r1"):
        find_lineage(db, "r2")


def test_page_in_a_real_browser(db: Store, tmp_path: Path) -> None:
    out = write_report(db, tmp_path / "report.html", ReportOptions(reported="openseek-mid-v1"))
    page = visit(out)
    assert page.requests == [out.absolute().as_uri()], "the page fetched something besides itself"
    assert page.console_errors == []
    board = page.tables["leaderboard"]
    header = board[0]
    assert header[:2] == ["Benchmark", "Qwen3-4B"] and "OpenSeek-Mid-v1" in header
    assert [c for c in header if "(measured)" in c] == ["s0 (measured)", "r1@100 (measured)", "r1@200 (measured)",
                                                        "r1@300 (measured)", "r1@400 (measured)",
                                                        "merged-final (measured)"]  # g0 has no runs: no column
    mmlu = next(row for row in board if row[0] == "MMLU (5-shot)")
    assert mmlu[header.index("merged-final (measured)")] == "48.00"
    assert mmlu[header.index("r1@300 (measured)")] == "40.00"
    assert mmlu[header.index("OpenSeek-Mid-v1")] == "79.31"  # the card's number, beside ours
    selection = page.tables["selection"]
    assert selection[0] == ["candidate", "mmlu", "gsm8k", "became"]
    assert selection[2] == ["r1@200", "35.00", "20.00", "math (weight 0.4): tie-break later"]
    assert selection[4] == ["r1@400", "45.00", "25.00", "knowledge (weight 0.6): beats every other free checkpoint "
                                                        "beyond noise"]
    assert ("Selection used: anchors ranked each candidate's counted run in suite openseek-mid-v1 (100 documents per "
            "benchmark): the same runs and documents the leaderboard shows.") in page.text
    regress = page.tables["regress"]
    assert regress[0][:4] == ["benchmark", "measured", "reference", "delta"]
    gsm8k = next(row for row in regress if row[0] == "gsm8k")
    assert gsm8k[1] == "27.00" and gsm8k[4] == "1.00" and gsm8k[7] == "fail"
    assert "merged-final vs OpenSeek-Mid-v1 (reported, openseek-mid-v1)" in page.text
    lineage = page.text[page.text.index("Lineage"):page.text.index("Regression check")]
    for name in ("s0", "g0", "r1@100", "r1@400", "merged-final", "0.4 × r1@200 + 0.6 × r1@400"):
        assert name in lineage, name
    assert "400 steps, 800M tokens; loss" in page.text  # from metrics.jsonl, tokens in readable units
    assert page.screenshot_std > 0.05, "the page renders blank"
    assert len(page.plot_std) == 3 and min(page.plot_std) > 0.05, page.plot_std  # scores, card bars, loss/lr
    assert overflowing(out, widths=(900, 1400)) == {900: [], 1400: []}  # nothing spills out of its card


def test_page_without_a_matching_card_checks_the_merge_against_the_last_checkpoint(db: Store) -> None:
    html = render_report(db, ReportOptions(run="r1", suite="openseek-mid-v1"))
    assert "<h3>merged-final vs r1@400</h3>" in html
    assert "Qwen3-4B" not in html
    # Token axes read like the card (K/M/B), never as fractions of a billion.
    assert ">800M<" in html and "0.0004" not in html
    assert "http://" not in html.replace("http://www.w3.org/", "") and "https://" not in html


def test_report_command(db: Store, tmp_path: Path, cli, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.html"
    assert cli("report", str(out), "--db", str(db.path), "--run", "r1") == 0
    assert capsys.readouterr().out.strip() == f"report: {out}"
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert cli("report", str(tmp_path / "x.html"), "--db", str(db.path), "--run", "r9") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no training run 'r9'" in err[0]
    assert not (tmp_path / "x.html").exists()
