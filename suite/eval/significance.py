"""Paired statistics for two models scored on the same documents: is a difference beyond noise?

Two models' benchmark scores share their documents, so the honest question is a paired one: per document, did
model A do better than model B? A benchmark is a list of strata (one per lm-eval sub-task that enters its headline
with its own weight; a size-weighted group is one pooled stratum), each holding aligned per-document values.

- `difference`: the headline difference A - B (the weighted mean of per-stratum mean differences).
- `bootstrap`: a paired bootstrap over documents (resampled within each stratum, so each stratum keeps its size):
  the percentile confidence interval of the difference and a two-sided p-value, the share of resamples of the
  centred differences at least as far from 0 as the observed one (Koehn 2004; Berg-Kirkpatrick et al. 2012).
- `mcnemar_exact`: for 0/1 metrics in one stratum, the exact McNemar test: under "no difference" the documents
  where exactly one model is right split between them as Binomial(n01 + n10, 1/2); the two-sided p-value is
  min(1, 2 P(X <= min(n01, n10))). This is what `compare` and the selector use whenever it applies.

`compare_paired` does all three and gives a verdict: better / worse / no detectable difference at `alpha`.
Pure functions of arrays (numpy only): the selector and results/ both call them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

BOOTSTRAP_ITERS = 10_000
_CHUNK_ELEMENTS = 4_000_000
EXACT_N = 1_000  # discordant documents up to which McNemar's tail is summed in exact integers
VERDICTS = ("better", "worse", "no detectable difference")


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
    """Two models on shared documents: their means, the difference with its CI, the test's p and the verdict."""

    n: int  # documents paired
    mean_a: float
    mean_b: float
    difference: float  # mean_a - mean_b
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # mcnemar-exact | paired-bootstrap | identical
    verdict: str  # better | worse | no detectable difference
    alpha: float

    @property
    def significant(self) -> bool:
        return self.verdict != VERDICTS[2]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def strata(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], weights: Sequence[float] | None = None
           ) -> list[Stratum]:
    """Strata from (a values, b values) pairs; weights default to equal (normalised later)."""
    weights = list(weights) if weights is not None else [1.0] * len(pairs)
    return [Stratum(np.asarray(a, dtype=float), np.asarray(b, dtype=float), w) for (a, b), w in zip(pairs, weights)]


def _weights(parts: Sequence[Stratum]) -> np.ndarray:
    w = np.array([s.weight for s in parts], dtype=float)
    return w / w.sum()


def difference(parts: Sequence[Stratum]) -> float:
    """The headline difference: the weighted mean over strata of mean(a) - mean(b)."""
    w = _weights(parts)
    return float(sum(wi * (s.a.mean() - s.b.mean()) for wi, s in zip(w, parts)))


def bootstrap(parts: Sequence[Stratum], *, alpha: float = 0.05, iters: int = BOOTSTRAP_ITERS,
              seed: int = 0) -> tuple[float, float, float]:
    """(ci_low, ci_high, p_value) of the difference by a paired, stratified bootstrap over documents."""
    rng = np.random.default_rng(seed)
    w = _weights(parts)
    observed = difference(parts)
    resampled = np.zeros(iters)
    for wi, s in zip(w, parts):
        d = s.a - s.b
        chunk = max(1, _CHUNK_ELEMENTS // len(d))  # bounded memory: MMLU's 14k documents x 10k resamples
        for start in range(0, iters, chunk):
            stop = min(iters, start + chunk)
            idx = rng.integers(0, len(d), size=(stop - start, len(d)))
            resampled[start:stop] += wi * d[idx].mean(axis=1)
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    centred = resampled - resampled.mean()
    if observed == 0 and not centred.any():
        return float(low), float(high), 1.0
    p = float((np.abs(centred) >= abs(observed) - 1e-12).mean())
    return float(low), float(high), p


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, float]:
    """(n01, n10, two-sided exact p): n01 = documents only B got right, n10 = only A got right."""
    a, b = np.asarray(a), np.asarray(b)
    n10 = int(((a == 1) & (b == 0)).sum())
    n01 = int(((a == 0) & (b == 1)).sum())
    n = n01 + n10
    if n == 0:
        return n01, n10, 1.0
    return n01, n10, min(1.0, 2 * binomial_half_cdf(n, min(n01, n10)))


def binomial_half_cdf(n: int, k: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), k <= n / 2: exact integer sums up to n = EXACT_N; beyond, the terms in log
    space (lgamma) from k downwards, which shrink geometrically, until they no longer change the sum (relative error
    ~1e-13 against the exact value; an integer sum at MMLU's size would take seconds per test)."""
    if n <= EXACT_N:
        return sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n
    log_norm = math.lgamma(n + 1) + n * math.log(0.5)
    total = 0.0
    for j in range(k, -1, -1):
        term = math.exp(log_norm - math.lgamma(j + 1) - math.lgamma(n - j + 1))
        total += term
        if term <= total * 1e-17:
            break
    return total


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


def compare_paired(parts: Sequence[Stratum], *, alpha: float = 0.05, iters: int = BOOTSTRAP_ITERS,
                   seed: int = 0, ci: bool = True) -> PairedResult:
    """Difference, bootstrap CI and the p-value of the test that applies (McNemar exact for 0/1 metrics pooled
    in one stratum, else the bootstrap), with the verdict at `alpha`. `ci=False` is for callers that need only the
    verdict (the selector, leaderboard marks): McNemar's p alone, no resampling (CI reported as NaN)."""
    if not parts:
        raise ValueError("no documents to compare")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    w = _weights(parts)
    mean_a = float(sum(wi * s.a.mean() for wi, s in zip(w, parts)))
    mean_b = float(sum(wi * s.b.mean() for wi, s in zip(w, parts)))
    diff = difference(parts)
    n = sum(len(s.a) for s in parts)
    if all(np.array_equal(s.a, s.b) for s in parts):
        return PairedResult(n, mean_a, mean_b, 0.0, 0.0, 0.0, 1.0, "identical", VERDICTS[2], alpha)
    mcnemar = len(parts) == 1 and is_binary(parts)
    if mcnemar and not ci:
        low = high = math.nan
    else:
        low, high, p = bootstrap(parts, alpha=alpha, iters=iters, seed=seed)
    test = "paired-bootstrap"
    if mcnemar:
        p, test = mcnemar_exact(parts[0].a, parts[0].b)[2], "mcnemar-exact"
    return PairedResult(n, mean_a, mean_b, diff, low, high, p, test, verdict(diff, p, alpha), alpha)


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
    return PairedResult(0, a, b, diff, diff - z * se, diff + z * se, p, "z-test (stderr)", verdict(diff, p, alpha),
                        alpha)
