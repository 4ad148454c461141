"""Significance marks for a leaderboard row: bold for the best score and every score within noise of it.

The card marks the highest value of a row bold and the second underlined. At 8, 200 or even 1,000 documents a
one-point lead is often noise, so `--marks significance` marks groups instead: bold is the top score plus every
score the paired test cannot tell from it at alpha (suite/eval/paired_runs.py over the documents both runs scored, or
a z-test on the standard errors where documents were not stored); underlined is the best of the rest plus the
scores within noise of that one. An average row is tested on all its benchmarks' documents at once (each benchmark
weighing 1/k, as the average does) when both columns stored them, else by the z-test on the averages' standard
errors. Each comparison is at alpha on its own (a row's marks are a grouping, not a family of verdicts). A reported
score carries no uncertainty: it is compared as exact, so two reported scores tie only when equal at the 2 decimals
shown. `--marks value` (the default) keeps the card's own marks, so the card's table is reproduced byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from suite.eval.significance import PairedResult, compare_stderr


@dataclass(frozen=True)
class Cell:
    """One column's score in a row, on the display scale, with what is known of its uncertainty."""

    value: float | None
    stderr: float | None = None
    run_id: str | None = None
    parts: tuple[str | None, ...] = ()  # an average's cell: the run behind each of its benchmarks, in order


Tester = Callable[[Cell, Cell], PairedResult | None]


def stderr_test(alpha: float) -> Tester:
    """The z-test on the cells' standard errors (None when neither has one: the values are compared as exact)."""
    return lambda a, b: compare_stderr(a.value, a.stderr, b.value, b.stderr, alpha=alpha)


def _within_noise(a: Cell, b: Cell, test: Tester) -> bool:
    result = test(a, b)
    if result is None:
        return round(a.value, 2) == round(b.value, 2)
    return not result.significant


def significance_marks(cells: list[Cell], test: Tester) -> list[str | None]:
    """"best" for the top score and every score within noise of it, "second" likewise for the best of the rest."""
    marks: list[str | None] = [None] * len(cells)
    order = sorted((i for i, c in enumerate(cells) if c.value is not None), key=lambda i: -cells[i].value)
    for mark in ("best", "second"):
        rest = [i for i in order if marks[i] is None]
        if not rest:
            break
        top = cells[rest[0]]
        for i in rest:
            if i == rest[0] or _within_noise(top, cells[i], test):
                marks[i] = mark
    return marks


def paired_test(samples: Any, alpha: float) -> Tester:
    """Per-document tests between the measured cells of one benchmark row (`samples`: their runs' values, a
    BenchmarkSamples loaded once for the row), the z-test on standard errors where a run stored no documents, exact
    comparison for reported scores."""
    from suite.eval.paired_runs import compare_runs

    def test(a: Cell, b: Cell) -> PairedResult | None:
        if a.run_id and b.run_id and samples is not None:
            return compare_runs(samples, a.run_id, b.run_id, alpha=alpha, a=(a.value / 100, _unit(a.stderr)),
                                b=(b.value / 100, _unit(b.stderr)))
        return compare_stderr(a.value, a.stderr, b.value, b.stderr, alpha=alpha)

    return test


def average_test(samples: list[Any], alpha: float) -> Tester:
    """Tests between the cells of an average row: paired over every benchmark's documents at once (`samples`: one
    BenchmarkSamples per benchmark of the average, in the cells' `parts` order) when both columns stored them all,
    else the z-test on the averages' standard errors."""
    from suite.eval.significance import average_strata, compare_paired

    def test(a: Cell, b: Cell) -> PairedResult | None:
        if samples and len(a.parts) == len(b.parts) == len(samples) and all(a.parts) and all(b.parts):
            paired = [found.strata(ra, rb) for found, ra, rb in zip(samples, a.parts, b.parts)]
            if all(p is not None for p in paired):
                return compare_paired(average_strata(paired), alpha=alpha)
        return compare_stderr(a.value, a.stderr, b.value, b.stderr, alpha=alpha)

    return test


def _unit(stderr: float | None) -> float | None:
    return None if stderr is None else stderr / 100
