"""Paired statistics for two models scored on the same documents: is a difference beyond noise, and how large is it?

Two models' benchmark scores share their documents, so the honest question is a paired one. A benchmark is a list of
strata (one per lm-eval sub-task that enters its headline with its own weight; a size-weighted group is one pooled
stratum), each holding aligned per-document values. The headline difference is the weighted mean over strata of
mean(a) - mean(b). Every test comes with the interval that inverts it, so the interval excludes 0 exactly when
p < alpha, and its label follows alpha (`level`):

- 0/1 metrics in one stratum (most benchmarks): McNemar's test with Edwards' continuity correction,
  z = (|n10 - n01| - 1) / sqrt(n10 + n01), and its dual interval, Tango's (1998) score interval for a difference of
  paired proportions with the same correction: every difference d whose corrected score statistic stays within
  z_(1 - alpha/2). The correction keeps the test at or below the exact binomial test's rejections (for alpha <= 0.2,
  checked for every discordant count up to 4,000) and the interval at or above its nominal coverage in simulation.
- everything else (continuous metrics, means of tasks): the paired sign-flip test. Under "no difference" the two
  models are exchangeable on each document, so each difference's sign is a fair coin; p is the probability of a sign
  pattern whose weighted mean difference is at least as far from 0 as the observed one. Exact (every pattern, with
  its probability) when there are at most EXACT_PATTERNS; else RESAMPLES random patterns and p = (k + 1) / (B + 1),
  never 0 (Phipson & Smyth 2010). The interval is every shift delta the same test does not reject on d - delta;
  like a t interval it assumes roughly symmetric per-document differences (strongly skewed ones cover a little
  under nominal at a few dozen documents). It replaced a percentile bootstrap, which rejected a true null 10.9% of
  the time at 8 documents and whose interval disagreed with McNemar's p.
- `stderr`: the standard error of the difference, sqrt(sum_s w_s^2 var_s / n_s), shown beside it.

One resample count (RESAMPLES) serves `compare`, the leaderboard marks and the selector, so they always agree.
Pure functions of arrays (numpy only): the selector and results/ both call them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

RESAMPLES = 10_000  # random sign patterns when exact enumeration is too large; p resolves to 1e-4
EXACT_PATTERNS = 65_536  # enumerate every sign pattern (grouped by equal differences) up to this many
_CHUNK_ELEMENTS = 4_000_000  # random signs drawn per chunk: memory stays ~32 MiB at any document count
VERDICTS = ("better", "worse", "no detectable difference")
METHODS = {
    "mcnemar-cc": "McNemar's test with continuity correction; Tango's score interval with the same correction",
    "sign-flip-exact": "paired sign-flip test over every sign pattern; the interval inverts it",
    "sign-flip": f"paired sign-flip test over {RESAMPLES:,} random sign patterns, p = (k + 1) / (B + 1); the "
                 "interval inverts it",
    "z-test (stderr)": "two-sided z-test on two stored standard errors (no per-document values: unpaired)",
}


@dataclass(frozen=True)
class Stratum:
    """Aligned per-document values of the two models (same documents, same order) and the stratum's weight."""

    a: np.ndarray
    b: np.ndarray
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.a.shape != self.b.shape or self.a.ndim != 1 or len(self.a) == 0:
            raise ValueError(f"a stratum needs two equal-length, non-empty 1-D arrays, got {self.a.shape} and "
                             f"{self.b.shape}")


@dataclass(frozen=True)
class PairedResult:
    """Two models on shared documents: their means, the difference with its standard error and the interval of the
    test, the test's p and the verdict at alpha."""

    n: int  # documents paired
    mean_a: float
    mean_b: float
    difference: float  # mean_a - mean_b
    stderr: float  # of the difference
    ci_low: float  # the (1 - alpha) interval that inverts the test
    ci_high: float
    p_value: float
    test: str  # a key of METHODS
    verdict: str  # better | worse | no detectable difference
    alpha: float

    @property
    def significant(self) -> bool:
        return self.verdict != VERDICTS[2]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def level(alpha: float) -> str:
    """The confidence level an alpha gives, as a label: 0.05 -> '95%', 0.001 -> '99.9%'."""
    return f"{100 * (1 - alpha):.10g}%"


def strata(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], weights: Sequence[float] | None = None
           ) -> list[Stratum]:
    """Strata from (a values, b values) pairs; weights default to equal (normalised later)."""
    weights = list(weights) if weights is not None else [1.0] * len(pairs)
    return [Stratum(np.asarray(a, dtype=float), np.asarray(b, dtype=float), w) for (a, b), w in zip(pairs, weights)]


def average_strata(benchmarks: Sequence[Sequence[Stratum]]) -> list[Stratum]:
    """The strata of an unweighted mean over benchmarks (an "Avg" row): each benchmark weighs 1/k, its strata
    inside it as its own headline weighs them, so the difference is the mean of the benchmarks' differences."""
    out = []
    for parts in benchmarks:
        total = sum(s.weight for s in parts)
        out += [Stratum(s.a, s.b, s.weight / total / len(benchmarks)) for s in parts]
    return out


def _weights(parts: Sequence[Stratum]) -> np.ndarray:
    w = np.array([s.weight for s in parts], dtype=float)
    return w / w.sum()


def difference(parts: Sequence[Stratum]) -> float:
    """The headline difference: the weighted mean over strata of mean(a) - mean(b)."""
    w = _weights(parts)
    return float(sum(wi * (s.a.mean() - s.b.mean()) for wi, s in zip(w, parts)))


def difference_stderr(parts: Sequence[Stratum]) -> float:
    """Standard error of the headline difference: sqrt(sum_s w_s^2 var_s(a - b) / n_s), var with n - 1."""
    w = _weights(parts)
    var = sum(wi * wi * (np.var(s.a - s.b, ddof=1) if len(s.a) > 1 else 0.0) / len(s.a) for wi, s in zip(w, parts))
    return float(math.sqrt(var))


def is_binary(parts: Sequence[Stratum]) -> bool:
    """Whether every value is 0 or 1 (a right/wrong metric: McNemar's test applies)."""
    return all(np.isin(s.a, (0.0, 1.0)).all() and np.isin(s.b, (0.0, 1.0)).all() for s in parts)


def verdict(diff: float, p: float, alpha: float) -> str:
    """better / worse when p < alpha, by the sign of the difference; else no detectable difference."""
    if p < alpha and diff > 0:
        return VERDICTS[0]
    if p < alpha and diff < 0:
        return VERDICTS[1]
    return VERDICTS[2]


# --- 0/1 metrics in one stratum: McNemar with continuity correction and its dual, Tango's score interval ----------

def discordant(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """(n10, n01): documents only A got right, documents only B got right."""
    a, b = np.asarray(a), np.asarray(b)
    return int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())


def _score(n10: int, n01: int, n: int, d: float) -> float:
    """Tango's score statistic for H0: p10 - p01 = d, with a continuity correction of 1 on n10 - n01 - n d (its
    value at d = 0 is McNemar's corrected z). p01 is its maximum-likelihood estimate under H0 (Tango 1998, eq. 5)."""
    qa = 2 * n
    qb = -n10 - n01 + (2 * n - n10 + n01) * d
    qc = -n01 * d * (1 - d)
    p01 = (math.sqrt(max(qb * qb - 4 * qa * qc, 0.0)) - qb) / (2 * qa)
    var = n * (2 * p01 + d * (1 - d))
    num = n10 - n01 - n * d
    num = math.copysign(max(abs(num) - 1.0, 0.0), num)
    if var <= 0:
        return math.copysign(math.inf, num) if num else 0.0
    return num / math.sqrt(var)


def mcnemar(n10: int, n01: int) -> float:
    """Two-sided p of McNemar's test with Edwards' continuity correction (1 when n10 == n01)."""
    if n10 + n01 == 0:
        return 1.0
    z = max(abs(n10 - n01) - 1.0, 0.0) / math.sqrt(n10 + n01)
    return math.erfc(z / math.sqrt(2))


def tango_interval(n10: int, n01: int, n: int, alpha: float) -> tuple[float, float]:
    """Every d in [-1, 1] whose corrected score statistic is within z_(1 - alpha/2): the statistic falls as d
    rises, so each bound is found by bisection (to 2^-60) between -1 or 1 and the estimate."""
    z = NormalDist().inv_cdf(1 - alpha / 2)
    estimate = (n10 - n01) / n

    def bound(rejects: Any, rejected: float, accepted: float) -> float:
        for _ in range(60):
            mid = (rejected + accepted) / 2
            if rejects(_score(n10, n01, n, mid)):
                rejected = mid
            else:
                accepted = mid
        return accepted

    low = -1.0 if _score(n10, n01, n, -1.0) <= z else bound(lambda s: s > z, -1.0, estimate)
    high = 1.0 if _score(n10, n01, n, 1.0) >= -z else bound(lambda s: s < -z, 1.0, estimate)
    return low, high


# --- everything else: the paired sign-flip test and the interval that inverts it ---------------------------------

def _groups(parts: Sequence[Stratum]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documents grouped by stratum and equal difference: (value, count, factor w_s / n_s) per group. A sign pattern
    enters only through each group's sum of signs, so groups make the enumeration and the sampling cheap."""
    w = _weights(parts)
    values, counts, factors = [], [], []
    for wi, s in zip(w, parts):
        v, c = np.unique(s.a - s.b, return_counts=True)
        values.append(v)
        counts.append(c)
        factors.append(np.full(len(v), wi / len(s.a)))
    return np.concatenate(values), np.concatenate(counts), np.concatenate(factors)


def _patterns(values: np.ndarray, counts: np.ndarray, factors: np.ndarray, resamples: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(A, C, probability, exact) over sign patterns: A = sum f v S and C = sum f S, where S is a group's sum of
    signs. Every pattern when there are at most EXACT_PATTERNS, else `resamples` random ones plus the observed."""
    if math.prod(int(c) + 1 for c in counts) <= EXACT_PATTERNS:
        big_a, big_c, prob = np.zeros(1), np.zeros(1), np.ones(1)
        for v, c, f in zip(values, counts, factors):
            s = 2 * np.arange(c + 1) - c
            steps = np.log((c - np.arange(c)) / np.arange(1, c + 1))  # log C(c, k) by running ratios
            pk = np.exp(np.concatenate([[0.0], np.cumsum(steps)]) - c * math.log(2))
            big_a = (big_a[:, None] + f * v * s[None, :]).ravel()
            big_c = (big_c[:, None] + f * s[None, :]).ravel()
            prob = (prob[:, None] * pk[None, :]).ravel()
        return big_a, big_c, prob, True
    rng = np.random.default_rng(seed)
    sums = np.zeros((resamples, 2))  # per pattern: (A, C)
    single = counts == 1
    for pick in (single, ~single):
        if not pick.any():
            continue
        v, c, f = values[pick], counts[pick], factors[pick]
        weights = np.stack([f * v, f], axis=1)
        chunk = max(1, _CHUNK_ELEMENTS // len(v))
        for start in range(0, resamples, chunk):
            rows = min(resamples, start + chunk) - start
            if pick is single:  # one document per group: a sign is a fair bit, S = 2 bit - 1
                heads = rng.integers(0, 2, size=(rows, len(v)), dtype=np.int8)
            else:  # S = 2 Binomial(c, 1/2) - c
                heads = rng.binomial(c, 0.5, size=(rows, len(v)))
            sums[start:start + rows] += 2.0 * (heads @ weights) - (c[:, None] * weights).sum(axis=0)
    big_a, big_c = sums[:, 0], sums[:, 1]
    observed = float((factors * values * counts).sum())
    weight = 1.0 / (resamples + 1)
    return (np.append(big_a, observed), np.append(big_c, 1.0), np.full(resamples + 1, weight), False)


def _covered(big_a: np.ndarray, big_c: np.ndarray, observed: float, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern, the closed set of shifts delta where |A - delta C| >= |D - delta| (the pattern is at least as
    extreme as the observed): an interval [low, high], empty when low > high, possibly unbounded. `tol` is the
    size below which a coefficient counts as 0."""
    qa = big_c ** 2 - 1.0  # q(delta) = qa delta^2 + qb delta + qc >= 0, with qa <= 0
    qb = 2.0 * (observed - big_a * big_c)
    qc = big_a ** 2 - observed ** 2
    low = np.full(len(big_a), np.inf)
    high = np.full(len(big_a), -np.inf)
    flat = np.abs(qa) < 1e-12  # every sign equal: q is linear, or 0 for the observed pattern and its mirror
    always = flat & (np.abs(qb) < tol) & (qc >= -tol)
    low[always], high[always] = -np.inf, np.inf
    rising = flat & (qb >= tol)
    low[rising], high[rising] = -qc[rising] / qb[rising], np.inf
    falling = flat & (qb <= -tol)
    low[falling], high[falling] = -np.inf, -qc[falling] / qb[falling]
    curved = ~flat
    disc = qb[curved] ** 2 - 4 * qa[curved] * qc[curved]
    real = disc >= 0
    root = np.sqrt(np.where(real, disc, 0.0))
    r1 = (-qb[curved] + root) / (2 * qa[curved])
    r2 = (-qb[curved] - root) / (2 * qa[curved])
    low[curved] = np.where(real, np.minimum(r1, r2), np.inf)
    high[curved] = np.where(real, np.maximum(r1, r2), -np.inf)
    return low, high


def _invert(low: np.ndarray, high: np.ndarray, prob: np.ndarray, observed: float, alpha: float
            ) -> tuple[float, float]:
    """The run of shifts around the estimate where p(delta) = P(a pattern covers delta) stays >= alpha. p is
    constant on the open segments between the sets' ends (and at an end at least as large as beside it), so the
    run ends at the first end, on either side, whose outer segment falls below alpha."""
    keep = low <= high
    low, high, prob = low[keep], high[keep], prob[keep]
    lows, highs = np.sort(low), np.sort(high)
    cum_low = np.concatenate([[0.0], np.cumsum(prob[np.argsort(low)])])
    cum_high = np.concatenate([[0.0], np.cumsum(prob[np.argsort(high)])])
    points = np.unique(np.concatenate([low[np.isfinite(low)], high[np.isfinite(high)], [observed]]))
    # p on the segment just right of each point, and on the one left of the first point
    right = cum_low[np.searchsorted(lows, points, "right")] - cum_high[np.searchsorted(highs, points, "right")]
    leftmost = cum_low[np.searchsorted(lows, -np.inf, "right")] - cum_high[np.searchsorted(highs, -np.inf, "right")]
    at = int(np.searchsorted(points, observed))
    rejected_right = np.flatnonzero(right[at:] < alpha)
    hi = float(points[at + rejected_right[0]]) if len(rejected_right) else math.inf
    rejected_left = np.flatnonzero(right[:at] < alpha)
    if len(rejected_left):
        lo = float(points[rejected_left[-1] + 1])
    else:
        lo = float(points[0]) if leftmost < alpha else -math.inf
    return lo, hi


def sign_flip(parts: Sequence[Stratum], *, alpha: float = 0.05, resamples: int = RESAMPLES, seed: int = 0
              ) -> tuple[float, float, float, bool]:
    """(ci_low, ci_high, p, exact) of the paired sign-flip test of the headline difference (module docstring)."""
    values, counts, factors = _groups(parts)
    observed = float((factors * values * counts).sum())
    big_a, big_c, prob, exact = _patterns(values, counts, factors, resamples, seed)
    scale = float((factors * np.abs(values) * counts).sum()) or 1.0
    unit = 1e-12 * scale  # equal sums computed in different orders must count as equal
    big_a = np.round(big_a / unit) * unit
    observed_snapped = round(observed / unit) * unit
    p = float(min(1.0, prob[np.abs(big_a) >= abs(observed_snapped)].sum()))
    low, high = _covered(big_a, big_c, observed_snapped, tol=1e-12 * scale * scale)
    lo, hi = _invert(low, high, prob, observed_snapped, alpha)
    if p >= alpha:  # the interval reaches 0 exactly when the test does not reject
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    elif lo <= 0.0 <= hi:
        lo, hi = (math.ulp(0.0), hi) if observed > 0 else (lo, -math.ulp(0.0))
    return lo, hi, p, exact


def compare_paired(parts: Sequence[Stratum], *, alpha: float = 0.05, resamples: int = RESAMPLES, seed: int = 0
                   ) -> PairedResult:
    """Difference, standard error, the test that applies (module docstring), its interval and the verdict."""
    if not parts:
        raise ValueError("no documents to compare")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    w = _weights(parts)
    mean_a = float(sum(wi * s.a.mean() for wi, s in zip(w, parts)))
    mean_b = float(sum(wi * s.b.mean() for wi, s in zip(w, parts)))
    diff, se = difference(parts), difference_stderr(parts)
    n = sum(len(s.a) for s in parts)
    if len(parts) == 1 and is_binary(parts):
        n10, n01 = discordant(parts[0].a, parts[0].b)
        p = mcnemar(n10, n01)
        low, high = tango_interval(n10, n01, n, alpha)
        if p >= alpha:
            low, high = min(low, 0.0), max(high, 0.0)
        test = "mcnemar-cc"
    else:
        low, high, p, exact = sign_flip(parts, alpha=alpha, resamples=resamples, seed=seed)
        test = "sign-flip-exact" if exact else "sign-flip"
    return PairedResult(n, mean_a, mean_b, diff, se, low, high, p, test, verdict(diff, p, alpha), alpha)


def mean_stderr(errors: Sequence[float | None]) -> float | None:
    """The standard error of the mean of independent estimates with these standard errors (an average over
    benchmarks); None when any of them has none."""
    if not errors or any(e is None for e in errors):
        return None
    return math.sqrt(sum(e * e for e in errors)) / len(errors)


def compare_stderr(a: float, se_a: float | None, b: float, se_b: float | None, *, alpha: float = 0.05
                   ) -> PairedResult | None:
    """The unpaired fallback when no per-document values are stored: a two-sided z-test on the difference of two
    independent estimates with their standard errors (None when neither has one: no noise estimate at all)."""
    errors = [s for s in (se_a, se_b) if s is not None and not math.isnan(s)]
    if not errors:
        return None
    se = math.sqrt(sum(s * s for s in errors))
    diff = a - b
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = math.erfc(abs(diff) / se / math.sqrt(2))
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return PairedResult(0, a, b, diff, se, diff - z * se, diff + z * se, p, "z-test (stderr)",
                        verdict(diff, p, alpha), alpha)
