"""Paired statistics against independent references (statsmodels, scipy, a numerical score-interval inversion) and in
simulation: every interval agrees with its test, covers the truth at least as often as it says, and the tests keep
their level. Simulations use fixed seeds and a few thousand draws at most per case."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

from suite.eval.significance import (
    METHODS,
    RESAMPLES,
    compare_paired,
    compare_stderr,
    difference,
    difference_stderr,
    discordant,
    level,
    mcnemar,
    sign_flip,
    strata,
    tango_interval,
)

stats = pytest.importorskip("scipy.stats")
optimize = pytest.importorskip("scipy.optimize")


def binary_pair(only_a: int, only_b: int, both: int, neither: int) -> tuple[list[int], list[int]]:
    """Per-document 0/1 results with the given discordant and concordant counts."""
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


# --- McNemar with continuity correction and Tango's interval ------------------------------------------------------

def test_mcnemar_matches_statsmodels() -> None:
    contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
    for n10, n01 in ((8, 2), (12, 1), (5, 0), (0, 7), (30, 18), (400, 350), (3, 4), (1, 0)):
        table = [[10, n10], [n01, 10]]
        ref = contingency.mcnemar(table, exact=False, correction=True)
        assert mcnemar(n10, n01) == pytest.approx(ref.pvalue, rel=1e-12), (n10, n01)
    assert mcnemar(0, 0) == 1.0 and mcnemar(6, 6) == 1.0  # |n10 - n01| - 1 is clipped at 0
    assert discordant(*binary_pair(8, 2, 30, 10)) == (8, 2)


def test_the_corrected_test_rejects_only_where_the_exact_one_does() -> None:
    # every discordant count m up to 4,000 and every split k <= m / 2: for alpha <= 0.2, p(corrected) < alpha
    # implies p(exact binomial) < alpha, so the corrected test is never less conservative than the exact one
    m = np.repeat(np.arange(1, 4001), np.arange(1, 4001) // 2 + 1)
    k = np.concatenate([np.arange(x // 2 + 1) for x in range(1, 4001)])
    exact = np.minimum(1.0, 2 * stats.binom.cdf(k, m, 0.5))
    corrected = 2 * stats.norm.sf(np.maximum(m - 2 * k - 1, 0) / np.sqrt(m))
    for alpha in (0.2, 0.1, 0.05, 0.01, 0.001, 1e-5):
        assert not ((corrected < alpha) & (exact >= alpha)).any(), alpha


def reference_score(n10: int, n01: int, n: int, d: float) -> float:
    """Tango's statistic from its definition: p01 maximises the multinomial likelihood under p10 - p01 = d (found
    numerically by scipy), the variance is n (p10 + p01 - d^2), and the correction is 1 on n10 - n01 - n d."""
    rest = n - n10 - n01

    def nll(p01: float) -> float:
        p10 = p01 + d
        return -(n10 * math.log(p10) + n01 * math.log(p01) + rest * math.log(max(1 - p10 - p01, 1e-300)))

    low, high = max(0.0, -d) + 1e-12, (1 - d) / 2 - 1e-12
    p01 = optimize.minimize_scalar(nll, bounds=(low, high), method="bounded",
                                   options={"xatol": 1e-13}).x if n01 or n10 or rest else low
    num = n10 - n01 - n * d
    return math.copysign(max(abs(num) - 1, 0), num) / math.sqrt(n * (2 * p01 + d - d * d))


def test_tango_interval_matches_a_numerical_inversion() -> None:
    z = stats.norm.ppf(0.975)
    for n10, n01, n in ((8, 2, 200), (12, 1, 40), (5, 0, 200), (40, 20, 160), (1, 7, 21), (3, 3, 50)):
        low, high = tango_interval(n10, n01, n, 0.05)
        ref_low = optimize.brentq(lambda d: reference_score(n10, n01, n, d) - z, -0.999, (n10 - n01) / n - 1e-9)
        ref_high = optimize.brentq(lambda d: reference_score(n10, n01, n, d) + z, (n10 - n01) / n + 1e-9, 0.999)
        assert (low, high) == (pytest.approx(ref_low, abs=2e-6), pytest.approx(ref_high, abs=2e-6)), (n10, n01)
    # at d = 0 the statistic is McNemar's corrected z: the interval excludes 0 exactly when p < alpha
    contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
    assert reference_score(8, 2, 200, 0.0) ** 2 == pytest.approx(
        contingency.mcnemar([[0, 8], [2, 190]], exact=False, correction=True).statistic, rel=1e-6)


def test_binary_comparisons_use_mcnemar_and_its_interval() -> None:
    a, b = binary_pair(12, 1, 20, 7)
    better = compare_paired(strata([(a, b)]))
    assert better.test == "mcnemar-cc" and better.n == 40
    assert better.difference == pytest.approx(11 / 40)
    assert better.mean_a == pytest.approx(32 / 40) and better.mean_b == pytest.approx(21 / 40)
    assert better.p_value == pytest.approx(mcnemar(12, 1)) and better.verdict == "better"
    assert 0 < better.ci_low < better.difference < better.ci_high
    assert (better.ci_low, better.ci_high) == tango_interval(12, 1, 40, 0.05)
    worse = compare_paired(strata([(b, a)]))
    assert worse.verdict == "worse" and worse.ci_high < 0
    # the case: 5 documents only A solves, none only B. p = 0.074: no verdict, and the interval says so
    five = compare_paired(strata([binary_pair(5, 0, 0, 195)]))
    assert five.verdict == "no detectable difference" and five.ci_low < 0 < five.ci_high
    # no discordant document: p = 1, yet the interval is not a point: 200 agreements still leave room
    same = compare_paired(strata([(a, a)]))
    assert same.p_value == 1.0 and same.ci_low < 0 < same.ci_high and same.difference == 0


def test_interval_and_test_agree_on_every_discordant_split() -> None:
    for alpha in (0.1, 0.05, 0.01, 0.001):
        for n10 in range(0, 25):
            for n01 in range(0, 25):
                r = compare_paired(strata([binary_pair(n10, n01, 30, 30)]), alpha=alpha)
                assert (r.ci_low > 0 or r.ci_high < 0) == (r.p_value < alpha), (alpha, n10, n01)


@lru_cache(maxsize=None)
def _covers(n10: int, n01: int, n: int, truth: float) -> bool:
    r = compare_paired(strata([binary_pair(n10, n01, 0, n - n10 - n01)]))
    return r.ci_low - 1e-12 <= truth <= r.ci_high + 1e-12


COVERAGE: dict[str, float] = {}


@pytest.mark.parametrize("discordant_pairs", [2, 4, 8, 16, 32, 64])
def test_binary_interval_covers_at_least_nominal(discordant_pairs: int) -> None:
    # n = 200 documents, an expected 2..64 where the models disagree, A winning half to all of them
    rng = np.random.default_rng(discordant_pairs)
    n, draws = 200, 2000
    psi = discordant_pairs / n
    for share in (0.5, 0.75, 1.0):
        p10, p01 = psi * share, psi * (1 - share)
        counts = rng.multinomial(n, [p10, p01, 1 - psi], size=draws)
        covered = np.mean([_covers(int(x), int(y), n, p10 - p01) for x, y, _ in counts])
        COVERAGE[f"{discordant_pairs} discordant, A wins {share:.0%}"] = float(covered)
        assert covered >= 0.94, (discordant_pairs, share, covered)


# --- the sign-flip test -------------------------------------------------------------------------------------------

def mean_diff(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def test_exact_sign_flip_matches_scipy_and_inverts_exactly() -> None:
    rng = np.random.default_rng(0)
    for n in (6, 9, 12):
        b = rng.normal(0, 1, n)
        a = b + rng.normal(0.5, 1, n)
        low, high, p, exact = sign_flip(strata([(a, b)]))
        ref = stats.permutation_test((a, b), mean_diff, permutation_type="samples", n_resamples=np.inf)
        assert exact and p == pytest.approx(ref.pvalue, rel=1e-12)
        for delta, rejected in ((low - 1e-7, True), (low + 1e-7, False), (high - 1e-7, False), (high + 1e-7, True)):
            shifted = stats.permutation_test((a - delta, b), mean_diff, permutation_type="samples",
                                             n_resamples=np.inf).pvalue
            assert (shifted < 0.05) == rejected, (n, delta)


def test_random_sign_flip_p_is_never_zero_and_matches_the_t_test_at_size() -> None:
    rng = np.random.default_rng(1)
    b = rng.normal(0.5, 0.2, 300)
    a = b + rng.normal(0.05, 0.1, 300)  # t ~ 9: every random pattern is less extreme
    low, high, p, exact = sign_flip(strata([(a, b)]))
    assert not exact and p == pytest.approx(1 / (RESAMPLES + 1))
    a = b + rng.normal(0.01, 0.1, 300)
    result = compare_paired(strata([(a, b)]))
    t = stats.ttest_rel(a, b)
    ref = t.confidence_interval()
    assert result.test == "sign-flip" and result.p_value == pytest.approx(t.pvalue, abs=0.01)
    assert (result.ci_low, result.ci_high) == (pytest.approx(ref.low, abs=0.002), pytest.approx(ref.high, abs=0.002))
    assert result.stderr == pytest.approx(stats.sem(a - b), rel=1e-9)


def test_strata_weigh_like_an_unweighted_mean_of_tasks() -> None:
    # task 1: A +0.5 over 2 docs; task 2: A -0.1 over 10 docs -> headline difference (0.5 - 0.1) / 2 = 0.2
    parts = strata([([1, 1], [0.5, 0.5]), ([0.0] * 10, [0.1] * 10)])
    assert difference(parts) == pytest.approx(0.2)
    result = compare_paired(parts)
    assert result.mean_a == pytest.approx(0.5) and result.mean_b == pytest.approx(0.3)
    assert result.test == "sign-flip-exact" and result.n == 12
    # every difference is fixed (no spread within a stratum): the stderr is 0 and only the shift model's
    # patterns decide; exact enumeration over 3 x 11 grouped patterns
    assert difference_stderr(parts) == 0.0


def test_identical_continuous_values_give_no_difference() -> None:
    values = np.linspace(0.1, 0.9, 40)
    result = compare_paired(strata([(values, values)]))
    assert result.p_value == 1.0 and result.verdict == "no detectable difference"
    assert result.ci_low == result.ci_high == 0.0


SIZE: dict[str, float] = {}


@pytest.mark.parametrize("n, resamples", [(8, RESAMPLES), (30, 1000)])
def test_sign_flip_keeps_its_level_under_the_null(n: int, resamples: int) -> None:
    # a continuous metric, no true difference, skewed per-document differences; the percentile bootstrap this
    # replaced rejected 10.9% of such draws at n = 8
    rng = np.random.default_rng(n)
    draws, rejected = 2000, 0
    for _ in range(draws):
        b = rng.gamma(2.0, 0.1, n)
        a = b + rng.choice([-1, 1], n) * rng.exponential(0.1, n)
        rejected += sign_flip(strata([(a, b)]), resamples=resamples, seed=int(rng.integers(1 << 30)))[2] < 0.05
    SIZE[f"sign-flip, n = {n}"] = rejected / draws
    assert rejected / draws <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / draws)


@pytest.mark.parametrize("case", ["normal, n = 10 (exact)", "scores in [0, 1], n = 40", "0/1, two tasks, 50 + 100"])
def test_sign_flip_interval_covers_at_least_nominal(case: str) -> None:
    rng = np.random.default_rng(len(case))
    draws, covered = 2000, 0
    # per-document scores in [0, 1] (a token-F1-like metric): B ~ Beta(2, 2), A = clip(B + N(0.05, 0.15)); the
    # population difference from a million fixed draws (its own error ~1e-4)
    population = np.random.default_rng(123).beta(2, 2, 1_000_000)
    bounded_truth = float((np.clip(population + np.random.default_rng(124).normal(0.05, 0.15, population.size), 0, 1)
                           - population).mean())
    for _ in range(draws):
        if case.startswith("normal"):
            b = rng.normal(0, 1, 10)
            parts, truth = strata([(b + rng.normal(0.3, 1, 10), b)]), 0.3
        elif case.startswith("scores"):
            b = rng.beta(2, 2, 40)
            parts, truth = strata([(np.clip(b + rng.normal(0.05, 0.15, 40), 0, 1), b)]), bounded_truth
        else:  # a mean of two tasks: per document both right / only A / only B / neither
            pairs = []
            for size, cells in ((50, (0.6, 0.10, 0.05, 0.25)), (100, (0.5, 0.06, 0.06, 0.38))):
                kind = rng.choice(4, size=size, p=cells)
                pairs.append((np.isin(kind, (0, 1)).astype(float), np.isin(kind, (0, 2)).astype(float)))
            parts, truth = strata(pairs), (0.05 + 0.0) / 2
        low, high, _, _ = sign_flip(parts, resamples=2000, seed=int(rng.integers(1 << 30)))
        covered += low <= truth <= high
    COVERAGE[f"sign-flip, {case}"] = covered / draws
    assert covered / draws >= 0.94


# --- fallbacks and labels -----------------------------------------------------------------------------------------

def test_stderr_fallback_is_a_two_sided_z_test() -> None:
    # 0.60 +- 0.03 vs 0.50 +- 0.04: se = 0.05, z = 2, p = erfc(2 / sqrt 2) = 0.0455
    result = compare_stderr(0.6, 0.03, 0.5, 0.04)
    assert result is not None and result.p_value == pytest.approx(math.erfc(math.sqrt(2)))
    assert result.p_value == pytest.approx(0.04550026, abs=1e-8) and result.verdict == "better"
    assert result.ci_low == pytest.approx(0.1 - 1.959964 * 0.05, abs=1e-6) and result.stderr == pytest.approx(0.05)
    assert compare_stderr(0.6, 0.03, 0.5, 0.04, alpha=0.01).verdict == "no detectable difference"
    assert compare_stderr(0.6, None, 0.5, None) is None
    assert set(METHODS) == {"mcnemar-cc", "sign-flip-exact", "sign-flip", "z-test (stderr)"}


def test_level_labels_follow_alpha() -> None:
    assert [level(a) for a in (0.05, 0.01, 0.1, 0.001)] == ["95%", "99%", "90%", "99.9%"]


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        strata([([1, 0], [1])])
    with pytest.raises(ValueError, match="no documents"):
        compare_paired([])
    with pytest.raises(ValueError, match="alpha must be in"):
        compare_paired(strata([([1], [0])]), alpha=1.5)
