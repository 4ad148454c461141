"""Family-wise verdicts: adjust the p-values of several tests that are read together (one per benchmark).

Fourteen benchmarks tested at alpha 0.05 each call at least one "better" or "worse" in about half of all runs where
nothing differs. An adjustment makes the family's error what alpha says:

- `holm` (the default): Holm's step-down method; the chance of any false verdict in the family stays <= alpha
  whatever the dependence between the tests (Holm 1979).
- `bh`: Benjamini-Hochberg; the expected share of false verdicts among those made stays <= alpha (for independent or
  positively dependent tests): more verdicts, a weaker promise.
- `none`: each test at alpha alone.

Adjusted p-values are compared with alpha as the raw ones were (a verdict needs adjusted p < alpha).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ADJUSTMENTS = ("holm", "bh", "none")
NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no adjustment"}


def adjust(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values in the order given (each >= its raw value, at most 1)."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"unknown adjustment {method!r}; use one of {', '.join(ADJUSTMENTS)}")
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0 or method == "none":
        return [float(x) for x in p]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":  # the i-th smallest times (m - i + 1), never below an earlier one
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    else:  # the i-th smallest times m / i, never above a later one
        adjusted = np.minimum.accumulate(np.minimum(1.0, m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]


def describe(method: str, tests: int) -> str:
    """How the verdicts of a family were reached, for a header: 'Holm over 14 tests'."""
    plural = "s" if tests != 1 else ""
    if method == "none":
        return f"{tests} test{plural}, each at alpha (no adjustment)"
    return f"{NAMES[method]} over {tests} test{plural}"
