"""The leaderboard over stored runs: picking runs, marks, missing values, averages, formats, CLI and errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from results_store import add_model, add_run

from results.leaderboard import build_leaderboard, format_tokens, mark_row
from results.leaderboard_format import render, to_markdown
from results.reported_scores import load_reported
from suite.store import Store
from suite.store.queries import ResultsError, find_models

KEYS = ["mmlu", "mmlu_pro", "agieval_en", "bbh", "hellaswag", "winogrande", "piqa", "openbookqa", "arc_challenge",
        "gsm8k", "math", "gpqa_diamond", "mbpp", "evalplus"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Store:
    """alpha: all 14 (mmlu run twice); beta: no gsm8k (a failed and a running one don't count); gamma: limit run."""
    root = tmp_path_factory.mktemp("lb")
    store = Store(root / "results.duckdb")
    alpha, beta, gamma = (add_model(store, tiny_model, root, n) for n in ("alpha", "beta", "gamma"))
    for i, key in enumerate(KEYS):
        add_run(store, alpha, key, 0.40 + i / 100)
        if key != "gsm8k":
            add_run(store, beta, key, 0.40 + i / 100 if key == "hellaswag" else 0.30)
    add_run(store, alpha, "mmlu", 0.35)  # newer, lower: latest != best
    add_run(store, beta, "gsm8k", 0.99, status="failed")
    add_run(store, beta, "gsm8k", 0.99, status="running")
    add_run(store, gamma, "mmlu", 0.90, limit=10)
    add_run(store, gamma, "arc_challenge", 0.95, suite="other-suite")
    return store


def _row(lb, key):
    return next(r for r in lb.rows if r.key == key)


def test_measured_columns_pick_runs_and_mark_rows(db: Store) -> None:
    lb = build_leaderboard(db)
    assert [c.label for c in lb.columns] == ["alpha", "beta", "gamma"]
    assert _row(lb, "mmlu").values == [35.0, 30.0, 90.0]  # latest alpha run; gamma's limit run counts, with a note
    assert _row(lb, "mmlu").marks == [None, None, None] or _row(lb, "mmlu").marks == ["second", None, "best"]
    assert _row(lb, "mmlu").marks == ["second", None, "best"]
    assert _row(lb, "hellaswag").values[:2] == [44.0, 44.0] and _row(lb, "hellaswag").marks[:2] == ["best", "best"]
    assert _row(lb, "gsm8k").values == [49.0, None, None]
    assert _row(lb, "arc_challenge").values[2] is None  # other suite's run is not this suite's score
    assert any("gamma: mmlu measured on a --limit subset" in n for n in lb.notes)
    best = build_leaderboard(db, pick="best")
    assert _row(best, "mmlu").values[0] == pytest.approx(40.0)


def test_missing_values_are_shown_and_left_out_of_averages(db: Store) -> None:
    lb = build_leaderboard(db, models=["alpha", "beta"])
    beta = [30.0 if k != "hellaswag" else 44.0 for k in KEYS]
    avg_all = _row(lb, "avg_all").values
    assert avg_all[1] == pytest.approx((sum(beta) - 30.0) / 13)
    assert avg_all[0] == pytest.approx(sum([35.0] + [40.0 + i for i in range(1, 14)]) / 14)
    assert _row(lb, "avg_general").values[1] == pytest.approx(sum(beta[:9]) / 9)
    assert any(n.startswith("Avg All for beta leaves out gsm8k") and "13 of 14" in n for n in lb.notes)
    text = to_markdown(lb)
    assert "| GSM8K (4-shot CoT) | **49.00** | — |" in text
    assert "- — marks a missing score; averages leave it out." in text


def test_reported_and_measured_side_by_side(db: Store) -> None:
    lb = build_leaderboard(db, reported=load_reported("openseek-mid-v1"), models=["gamma"])
    assert [c.label for c in lb.columns][-2:] == ["OpenSeek-Mid-v1", "gamma (measured)"]
    assert [c.source for c in lb.columns] == ["reported"] * 7 + ["measured"]
    mmlu = _row(lb, "mmlu")
    assert mmlu.values[-1] == 90.0 and mmlu.marks[-1] == "best" and mmlu.marks[5] == "second"  # 80.57 now second
    assert _row(lb, "avg_all").values[-1] == 90.0
    assert any("Avg All for gamma (measured) leaves out" in n and "1 of 14" in n for n in lb.notes)


def test_formats(db: Store) -> None:
    lb = build_leaderboard(db, models=["alpha", "beta"])
    rows = list(csv.reader(io.StringIO(render(lb, "csv"))))
    assert rows[0] == ["benchmark", "key", "alpha", "beta"]
    assert ["GSM8K (4-shot CoT)", "gsm8k", "49.00", ""] in rows
    html = render(lb, "html")
    assert "<td>GSM8K (4-shot CoT)</td><td><b>49.00</b></td><td>—</td>" in html and "<u>" in html
    latex = render(lb, "latex")
    assert r"GSM8K (4-shot CoT) & \textbf{49.00} & --- \\" in latex and r"\underline{" in latex
    assert r"Avg All for beta leaves out gsm8k" in latex


def test_mark_row_and_token_format() -> None:
    assert mark_row([1.0, 3.0, 3.001, 2.0, None]) == [None, "best", "best", "second", None]
    assert mark_row([5.0, 5.0]) == ["best", "best"]
    assert mark_row(["36T", None]) == [None, None]
    assert [format_tokens(t) for t in (2e12, 1.36e12, 5e8, None)] == ["2T", "1.36T", "500M", None]


def test_cli_writes_atomically(db: Store, tmp_path: Path, cli, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "board" / "lb.csv"
    assert cli("leaderboard", "--db", str(db.path), "-m", "alpha", "-m", "b*", "--format", "csv",
               "--out", str(out)) == 0
    assert out.read_text() == render(build_leaderboard(db, models=["alpha", "beta"]), "csv")
    assert [p.name for p in out.parent.iterdir()] == ["lb.csv"]
    assert cli("leaderboard", "--reported", "openseek-mid-v1") == 0
    assert "| **Avg All** | 61.88 |" in capsys.readouterr().out


def test_errors_are_one_line_exit_2(db: Store, store: Store, tmp_path: Path, cli,
                                    capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ResultsError, match="did you mean alpha"):
        build_leaderboard(db, models=["alpah"])
    with pytest.raises(ResultsError, match="no results database"):
        build_leaderboard(store)
    store.register_model(find_models(db, "alpha")[0]["path"], name="lonely")
    with pytest.raises(ResultsError, match="has no finished evaluation runs"):
        build_leaderboard(store)
    capsys.readouterr()
    assert cli("leaderboard", "--db", str(db.path), "-m", "gamm") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model 'gamm'") and "did you mean gamma" in err and err.count("\n") == 1
    bad = tmp_path / "partial.yaml"
    card = yaml.safe_load(load_reported("openseek-mid-v1").path.read_text())
    card["benchmarks"] = [b for b in card["benchmarks"] if b["key"] != "mbpp"]
    card["averages"] = []
    bad.write_text(yaml.safe_dump(card))
    assert cli("leaderboard", "--reported", str(bad)) == 2
    assert "missing benchmark(s) mbpp of suite openseek-mid-v1" in capsys.readouterr().err


def test_names_are_escaped_in_html_and_latex() -> None:
    from results.leaderboard import Column, Leaderboard, Row

    lb = Leaderboard([Column("run_1 & <b>", "measured", None)],
                     [Row("Training tokens", "training_tokens", "tokens", [None], [None]),
                      Row("50% of #1", "k", "score", [12.5], ["best"])], ["a_b & c"])
    assert r"run\_1 \& <b>" in render(lb, "latex") and r"50\% of \#1 & \textbf{12.50}" in render(lb, "latex")
    html = render(lb, "html")
    assert "<th>run_1 &amp; &lt;b&gt;</th>" in html and "<li>a_b &amp; c</li>" in html
