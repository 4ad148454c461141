"""`growbench compare`: paired verdicts from stored per-document rows, checked against hand-computed values, the
family-wise adjustment of the verdicts (Holm by default, with the average row in the family), and its one-line
errors (unknown model, no shared benchmark, no per-document results stored, bad alpha or adjustment)."""

from __future__ import annotations

import math
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


def mcnemar_cc(n10: int, n01: int) -> float:
    return math.erfc((abs(n10 - n01) - 1) / math.sqrt(n10 + n01) / math.sqrt(2))


def test_paired_verdicts_match_hand_computed_values(db: Store) -> None:
    report = compare(db, "A", "B", suite=SUITE)
    rows = {r.benchmark: r for r in report.rows}
    cloze, code, average = rows["tiny_cloze"], rows["tiny_code"], report.average
    assert (cloze.n, cloze.a, cloze.b) == (40, pytest.approx(80.0), pytest.approx(52.5))
    assert cloze.difference == pytest.approx(27.5) and cloze.test == "mcnemar-cc"
    assert cloze.p_value == pytest.approx(mcnemar_cc(12, 1)) and cloze.verdict == "better"  # 0.0055
    assert 0 < cloze.ci_low < 27.5 < cloze.ci_high
    # the paired standard error: sqrt(var(d) / n) with d = +1 x 12, -1 x 1, 0 x 27
    d = [1] * 12 + [-1] + [0] * 27
    mean = sum(d) / 40
    assert cloze.stderr == pytest.approx(100 * math.sqrt(sum((x - mean) ** 2 for x in d) / 39 / 40))
    assert code.p_value == pytest.approx(mcnemar_cc(8, 2)) and code.verdict == "no detectable difference"
    assert code.difference == pytest.approx(12.0) and code.n == 50  # (8 - 2) / 50
    assert code.ci_low < 0 < code.ci_high  # the interval agrees with the test
    # the average of the two: (27.5 + 12) / 2 over all 90 documents, by the sign-flip test
    assert average.n == 90 and average.difference == pytest.approx(19.75) and average.test == "sign-flip"
    # Holm over the 3 tests: the smallest p x 3, the next x 2 (never below the first), the largest x 1
    assert report.tests == 3 and report.adjust == "holm"
    assert average.p_adjusted == pytest.approx(min(1, 3 * average.p_value))
    assert cloze.p_adjusted == pytest.approx(max(2 * cloze.p_value, average.p_adjusted))
    assert code.p_adjusted == pytest.approx(max(code.p_value, cloze.p_adjusted))
    assert report.skipped == {"tiny_arith_mc": "no per-document results stored for B; re-run it with --force"}
    assert compare(db, "B", "A", suite=SUITE, benchmarks=["tiny_cloze"]).rows[0].verdict == "worse"
    one = compare(db, "A", "B", suite=SUITE, benchmarks=["tiny_cloze"])
    assert one.tests == 1 and one.average is None and one.rows[0].p_adjusted == one.rows[0].p_value
    assert compare(db, "A", "B", suite=SUITE, alpha=0.001).rows[0].verdict == "no detectable difference"
    lines = report.lines()
    assert lines[0].startswith("verdicts at alpha 0.05, Holm over 3 tests; each interval is its own test's 95% "
                               "interval (unadjusted); tests: mcnemar-cc: McNemar's test")
    assert lines[1].startswith("tiny_cloze: A 80.00 vs B 52.50, difference +27.50 ± 8.00 se, 95% CI [")
    assert lines[1].endswith("p = 0.0055, adjusted p = 0.011 (mcnemar-cc, 40 documents): A is better")
    short = report.short_lines()
    assert short[0] == "Holm over 3 tests at alpha 0.05 (mcnemar-cc, sign-flip; 40/50 documents; intervals per test)"
    assert short[1].split() == ["benchmark", "A", "-", "B", "[95%", "CI]", "p", "adj.", "p", "verdict"]
    assert short[2].split()[:2] == ["tiny_cloze", "+27.50"] and short[2].split()[-3:] == ["0.0055", "0.011", "better"]
    as_dict = report.to_dict()
    assert as_dict["tests"] == 3 and as_dict["rows"][0]["p_adjusted"] == cloze.p_adjusted
    assert as_dict["average"]["benchmark"] == "average" and short[-2].startswith("average  ")


def test_adjustments_and_the_level_label(db: Store) -> None:
    raw = compare(db, "A", "B", suite=SUITE, adjust="none")
    assert all(r.p_adjusted == r.p_value for r in raw.family_rows()) and "3 tests, each at alpha" in raw.family()
    bh = compare(db, "A", "B", suite=SUITE, adjust="bh")
    assert "Benjamini-Hochberg over 3 tests" in bh.family()
    holm = compare(db, "A", "B", suite=SUITE)
    assert all(x.p_adjusted <= y.p_adjusted for x, y in zip(bh.family_rows(), holm.family_rows()))
    wide = compare(db, "A", "B", suite=SUITE, alpha=0.01)
    assert "99% CI" in wide.short_lines()[1] and "99% interval" in wide.family()
    narrow = {r.benchmark: r for r in wide.rows}["tiny_cloze"]
    usual = {r.benchmark: r for r in raw.rows}["tiny_cloze"]
    assert narrow.ci_low < usual.ci_low and narrow.ci_high > usual.ci_high


def test_a_mean_of_tasks_pairs_each_task_with_its_weight(db: Store) -> None:
    [row] = compare(db, "A", "B", suite="openseek-mid-v1").rows
    # (1 - 0.5) / 2 + (0 - 0.1) / 2 = 0.2, over 12 documents: few enough to enumerate every sign pattern
    assert (row.benchmark, row.n, row.test) == ("evalplus", 12, "sign-flip-exact")
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
    with pytest.raises(ResultsError, match="--alpha must be between 0.001 and 0.5"):
        compare(db, "A", "B", suite=SUITE, alpha=0.9)
    with pytest.raises(ResultsError, match="unknown --adjust 'sidak'"):
        compare(db, "A", "B", suite=SUITE, adjust="sidak")
    for args, message in ((["A", "nope"], "no model 'nope'"), (["A", "C", "--suite", SUITE], "share no evaluated"),
                          (["A", "D", "--suite", SUITE], "no per-document results"),
                          (["A", "B", "--suite", SUITE, "--adjust", "sidak"], "unknown --adjust")):
        assert cli("compare", *args, "--db", str(db.path)) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert cli("compare", "A", "B", "--suite", SUITE, "-b", "tiny_cloze,tiny_code", "--db", str(db.path)) == 0
    out = capsys.readouterr().out
    assert "mcnemar-cc" in out and "better" in out and "no detectable" in out and "Holm over 3 tests" in out
    assert cli("compare", "A", "B", "--suite", SUITE, "--alpha", "0.1", "--adjust", "none", "--db",
               str(db.path)) == 0
    out = capsys.readouterr().out
    assert "90% CI of the difference" in out and "each at alpha (no adjustment)" in out


def test_a_family_of_pairs_is_adjusted_as_one(db: Store) -> None:
    """A study's pairs: every row of every pair in one Holm family, each report saying how many tests it holds."""
    from results.compare import compare_family
    from suite.eval.multiplicity import adjust

    alone = [compare(db, a, b, suite=SUITE, adjust="none") for a, b in (("A", "B"), ("B", "A"))]
    raw = [r.p_value for report in alone for r in report.family_rows()]
    family = compare_family(db, [("A", "B"), ("B", "A")], suite=SUITE)
    assert [r.p_value for report in family for r in report.family_rows()] == raw
    assert [r.p_adjusted for report in family for r in report.family_rows()] == pytest.approx(adjust(raw, "holm"))
    assert all(report.tests == 6 and report.adjust == "holm" for report in family)
    assert family[0].short_lines()[0].startswith("Holm over 6 tests at alpha 0.05")
    cloze = next(r for r in family[0].rows if r.benchmark == "tiny_cloze")
    assert cloze.verdict == "better" and cloze.p_adjusted > compare(db, "A", "B", suite=SUITE).rows[0].p_adjusted
    with pytest.raises(ResultsError, match="unknown --adjust"):
        compare_family(db, [("A", "B")], suite=SUITE, adjust="sidak")
