"""`growbench compare`: paired verdicts from stored per-document rows, checked against hand-computed values, and
its one-line errors (unknown model, no shared benchmark, no per-document results stored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_store import add_model, add_run, add_sampled_run, binary_pair

from results.compare import compare
from suite.store import Store
from suite.store.queries import ResultsError

SUITE = "tiny-builtin"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Store:
    root = tmp_path_factory.mktemp("compare")
    store = Store(root / "results.duckdb")
    a, b, c, d = (add_model(store, tiny_model, root, n) for n in ("A", "B", "C", "D"))
    cloze_a, cloze_b = binary_pair(12, 1, 20, 7)  # McNemar p = 2 (1 + 13) / 2^13
    code_a, code_b = binary_pair(8, 2, 30, 10)  # p = 2 (1 + 10 + 45) / 2^10 = 0.109375
    add_sampled_run(store, a, "tiny_cloze", [cloze_a], metric="acc_norm")
    add_sampled_run(store, b, "tiny_cloze", [cloze_b], metric="acc_norm")
    add_sampled_run(store, a, "tiny_code", [code_a])
    add_sampled_run(store, b, "tiny_code", [code_b])
    add_sampled_run(store, a, "tiny_arith_mc", [[1, 0, 1]])
    add_run(store, b, "tiny_arith_mc", 0.5, suite=SUITE)  # finished before per-document values were stored
    add_sampled_run(store, c, "tiny_arith_gen", [[1, 0]], metric="exact_match", filter_="strict-match")
    add_run(store, d, "tiny_arith_mc", 0.5, suite=SUITE)
    # the card suite's EvalPlus Avg: the unweighted mean of two task entries of different sizes
    add_sampled_run(store, a, "evalplus", [[1, 1], [0] * 10], metric="pass_at_1", suite="openseek-mid-v1",
                    tasks=["evalplus_humaneval", "evalplus_mbpp"], filters=["create_test", "none"])
    add_sampled_run(store, b, "evalplus", [[0.5, 0.5], [0.1] * 10], metric="pass_at_1", suite="openseek-mid-v1",
                    tasks=["evalplus_humaneval", "evalplus_mbpp"], filters=["create_test", "none"])
    return store


def test_paired_verdicts_match_hand_computed_values(db: Store) -> None:
    report = compare(db, "A", "B", suite=SUITE)
    rows = {r.benchmark: r for r in report.rows}
    cloze, code = rows["tiny_cloze"], rows["tiny_code"]
    assert (cloze.n, cloze.a, cloze.b) == (40, pytest.approx(80.0), pytest.approx(52.5))
    assert cloze.difference == pytest.approx(27.5) and cloze.test == "mcnemar-exact"
    assert cloze.p_value == pytest.approx(28 / 8192) and cloze.verdict == "better"
    assert 0 < cloze.ci_low < 27.5 < cloze.ci_high
    assert code.p_value == 0.109375 and code.verdict == "no detectable difference"
    assert code.difference == pytest.approx(12.0) and code.n == 50  # (8 - 2) / 50
    assert report.skipped == {"tiny_arith_mc": "no per-document results stored for B; re-run it with --force"}
    assert compare(db, "B", "A", suite=SUITE, benchmarks=["tiny_cloze"]).rows[0].verdict == "worse"
    assert compare(db, "A", "B", suite=SUITE, alpha=0.001).rows[0].verdict == "no detectable difference"
    lines = report.lines()
    assert lines[0].startswith("tiny_cloze: A 80.00 vs B 52.50, difference +27.50 [")
    assert lines[0].endswith("p = 0.0034 (mcnemar-exact, 40 documents): A is better (alpha 0.05)")


def test_a_mean_of_tasks_pairs_each_task_with_its_weight(db: Store) -> None:
    [row] = compare(db, "A", "B", suite="openseek-mid-v1").rows
    # (1 - 0.5) / 2 + (0 - 0.1) / 2 = 0.2, over 12 documents, by the stratified paired bootstrap
    assert (row.benchmark, row.n, row.test) == ("evalplus", 12, "paired-bootstrap")
    assert (row.a, row.b, row.difference) == (pytest.approx(50.0), pytest.approx(30.0), pytest.approx(20.0))


def test_errors_are_one_line(db: Store, cli, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ResultsError, match="no model 'nope'"):
        compare(db, "A", "nope")
    with pytest.raises(ResultsError, match="share no evaluated benchmark in suite tiny-builtin"):
        compare(db, "A", "C", suite=SUITE)
    with pytest.raises(ResultsError, match="no per-document results to pair for A vs D.*stored for D"):
        compare(db, "A", "D", suite=SUITE)
    with pytest.raises(ResultsError, match="choose one with --suite"):
        compare(db, "A", "B")
    for args, message in ((["A", "nope"], "no model 'nope'"), (["A", "C", "--suite", SUITE], "share no evaluated"),
                          (["A", "D", "--suite", SUITE], "no per-document results")):
        assert cli("compare", *args, "--db", str(db.path)) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert cli("compare", "A", "B", "--suite", SUITE, "-b", "tiny_cloze,tiny_code", "--db", str(db.path)) == 0
    out = capsys.readouterr().out
    assert "mcnemar-exact" in out and "better" in out and "no detectable" in out
