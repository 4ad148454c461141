"""Family-wise verdicts: Holm and Benjamini-Hochberg against statsmodels, and the family-wise error of `compare`'s
verdicts simulated on null families (14 benchmarks where nothing differs, plus their average)."""

from __future__ import annotations

import numpy as np
import pytest

from suite.eval.multiplicity import adjust, describe
from suite.eval.significance import average_strata, compare_paired, mcnemar, strata

ALPHA = 0.05
FWER: dict[str, float] = {}


def test_adjustments_match_statsmodels() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(0)
    cases = [rng.uniform(0, 1, 14), rng.uniform(0, 0.05, 7), np.array([0.01, 0.01, 0.04, 0.2, 1.0]),
             np.array([0.5]), np.concatenate([rng.uniform(0, 1e-4, 3), rng.uniform(0, 1, 11)])]
    for p in cases:
        for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
            expected = multitest.multipletests(p, alpha=ALPHA, method=theirs)[1]
            assert adjust(list(p), ours) == pytest.approx(list(expected), rel=1e-12), (ours, p)
        assert adjust(list(p), "none") == list(p)
    assert adjust([], "holm") == []
    with pytest.raises(ValueError, match="unknown adjustment 'sidak'"):
        adjust([0.1], "sidak")
    assert describe("holm", 15) == "Holm over 15 tests"
    assert describe("none", 1) == "1 test, each at alpha (no adjustment)"


def null_family(rng: np.random.Generator, n: int = 200) -> tuple[list[float], list[list]]:
    """14 benchmarks of n documents where A and B are equally good: each document's outcome pair is drawn with a
    discordance rate between 2% and 30% (split evenly between the models), so only noise differs."""
    p_values, parts = [], []
    for psi in np.linspace(0.02, 0.30, 14):
        kind = rng.choice(4, size=n, p=[0.5 - psi / 2, psi / 2, psi / 2, 0.5 - psi / 2])
        a, b = np.isin(kind, (0, 1)).astype(float), np.isin(kind, (0, 2)).astype(float)
        p_values.append(mcnemar(int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())))
        parts.append(strata([(a, b)]))
    return p_values, parts


def test_family_wise_error_stays_below_alpha_on_null_families() -> None:
    # compare's family: 14 null benchmarks and their average (sign-flip over all 2,800 documents), adjusted together
    rng = np.random.default_rng(22)
    families = 1000
    false = {"none": 0, "holm": 0, "bh": 0}
    for _ in range(families):
        p_values, parts = null_family(rng)
        average = compare_paired(average_strata(parts), resamples=1000, seed=int(rng.integers(1 << 30)))
        family = p_values + [average.p_value]
        for method in false:
            false[method] += min(adjust(family, method)) < ALPHA
    for method, count in false.items():
        FWER[f"15 tests ({method})"] = count / families
    assert false["holm"] / families <= ALPHA and false["bh"] / families <= ALPHA
    assert false["none"] / families > 0.25  # what the unadjusted verdicts did: at least one false "better"/"worse"


def test_family_wise_error_of_benchmark_rows_alone() -> None:
    # the audit setting: 14 null benchmarks at n = 200, McNemar only; many families (no resampling)
    rng = np.random.default_rng(14)
    families = 4000
    counts = [rng.multinomial(200, [psi / 2, psi / 2, 1 - psi], size=families) for psi in np.linspace(0.02, 0.3, 14)]
    false = {"none": 0, "holm": 0, "bh": 0}
    for i in range(families):
        p_values = [mcnemar(int(c[i, 0]), int(c[i, 1])) for c in counts]
        for method in false:
            false[method] += min(adjust(p_values, method)) < ALPHA
    for method, count in false.items():
        FWER[f"14 benchmarks ({method})"] = count / families
    assert false["holm"] / families <= ALPHA and false["bh"] / families <= ALPHA
