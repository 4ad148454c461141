"""Paired statistics against hand-computed values and scipy (an independent implementation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite.eval.significance import (
    bootstrap,
    compare_paired,
    compare_stderr,
    difference,
    mcnemar_exact,
    strata,
)


def binary_pair(only_a: int, only_b: int, both: int, neither: int) -> tuple[list[int], list[int]]:
    """Per-document 0/1 results with the given discordant and concordant counts."""
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


def test_mcnemar_exact_matches_the_worked_binomial() -> None:
    # 8 documents only A solves, 2 only B: under H0 the 10 discordant ones are Binomial(10, 1/2), and
    # p = 2 * P(X <= 2) = 2 * (1 + 10 + 45) / 1024 = 0.109375.
    a, b = binary_pair(8, 2, 30, 10)
    assert mcnemar_exact(a, b) == (2, 8, 0.109375)
    # 12 against 1: p = 2 * (1 + 13) / 2^13
    a, b = binary_pair(12, 1, 5, 5)
    assert mcnemar_exact(a, b)[2] == pytest.approx(28 / 8192, abs=1e-15)
    # no discordant documents: nothing to tell them apart
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]) == (0, 0, 1.0)
    # symmetric: p is capped at 1
    assert mcnemar_exact(*binary_pair(3, 3, 0, 0))[2] == 1.0


def test_mcnemar_agrees_with_scipy_binomtest() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
        n01, n10, p = mcnemar_exact(a, b)
        expected = stats.binomtest(min(n01, n10), n01 + n10, 0.5).pvalue if n01 + n10 else 1.0
        assert p == pytest.approx(expected, rel=1e-12)


def test_compare_paired_binary_uses_mcnemar_and_gives_verdicts() -> None:
    a, b = binary_pair(12, 1, 20, 7)
    better = compare_paired(strata([(a, b)]))
    assert better.test == "mcnemar-exact" and better.n == 40
    assert better.difference == pytest.approx(11 / 40)
    assert better.mean_a == pytest.approx(32 / 40) and better.mean_b == pytest.approx(21 / 40)
    assert better.p_value == pytest.approx(28 / 8192) and better.verdict == "better"
    assert better.ci_low > 0 and better.ci_low < better.difference < better.ci_high
    worse = compare_paired(strata([(b, a)]))
    assert worse.verdict == "worse" and worse.difference == pytest.approx(-11 / 40)
    tie = compare_paired(strata([binary_pair(8, 2, 30, 10)]))
    assert tie.verdict == "no detectable difference" and tie.p_value == 0.109375
    same = compare_paired(strata([(a, a)]))
    assert same.test == "identical" and same.p_value == 1.0 and same.verdict == "no detectable difference"


def test_bootstrap_ci_agrees_with_scipy_on_a_continuous_metric() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    b = rng.normal(0.5, 0.2, 200)
    a = b + rng.normal(0.05, 0.1, 200)
    low, high, p = bootstrap(strata([(a, b)]), iters=20_000)
    ref = stats.bootstrap(((a - b),), np.mean, n_resamples=20_000, method="percentile", random_state=2,
                          confidence_level=0.95).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.004) and high == pytest.approx(ref.high, abs=0.004)
    # the centred-bootstrap p-value of a clear shift (t ~ 7) is ~0; the paired t-test agrees
    assert p < 1e-3 and stats.ttest_rel(a, b).pvalue < 1e-3
    result = compare_paired(strata([(a, b)]))
    assert result.test == "paired-bootstrap" and result.verdict == "better"


def test_strata_weigh_like_an_unweighted_mean_of_tasks() -> None:
    # task 1: A +0.5 over 2 docs; task 2: A -0.1 over 10 docs -> headline difference (0.5 - 0.1) / 2 = 0.2
    parts = strata([([1, 1], [0.5, 0.5]), ([0.0] * 10, [0.1] * 10)])
    assert difference(parts) == pytest.approx(0.2)
    result = compare_paired(parts)
    assert result.mean_a == pytest.approx(0.5) and result.mean_b == pytest.approx(0.3)
    assert result.test == "paired-bootstrap" and result.n == 12


def test_stderr_fallback_is_a_two_sided_z_test() -> None:
    # 0.60 +- 0.03 vs 0.50 +- 0.04: se = 0.05, z = 2, p = erfc(2 / sqrt 2) = 0.0455
    result = compare_stderr(0.6, 0.03, 0.5, 0.04)
    assert result is not None and result.p_value == pytest.approx(math.erfc(math.sqrt(2)))
    assert result.p_value == pytest.approx(0.04550026, abs=1e-8) and result.verdict == "better"
    assert result.ci_low == pytest.approx(0.1 - 1.959964 * 0.05, abs=1e-6)
    assert compare_stderr(0.6, 0.03, 0.5, 0.04, alpha=0.01).verdict == "no detectable difference"
    assert compare_stderr(0.6, None, 0.5, None) is None


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        strata([([1, 0], [1])])
    with pytest.raises(ValueError, match="no documents"):
        compare_paired([])


def test_verdict_only_skips_the_resampling_for_mcnemar() -> None:
    a, b = binary_pair(12, 1, 20, 7)
    quick = compare_paired(strata([(a, b)]), ci=False)
    assert quick.p_value == pytest.approx(28 / 8192) and quick.verdict == "better"
    assert math.isnan(quick.ci_low) and math.isnan(quick.ci_high)


def test_binomial_tail_beyond_exact_sums_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    from suite.eval.significance import EXACT_N, binomial_half_cdf

    for n, k in ((EXACT_N + 1, 480), (5000, 2400), (14042, 6900), (14042, 7000), (3000, 1300)):
        assert binomial_half_cdf(n, k) == pytest.approx(stats.binom.cdf(k, n, 0.5), rel=1e-9), (n, k)
    # at the boundary both ways agree
    assert binomial_half_cdf(EXACT_N, 480) == pytest.approx(stats.binom.cdf(480, EXACT_N, 0.5), rel=1e-12)
