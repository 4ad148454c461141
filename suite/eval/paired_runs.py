"""Pair evaluation runs of one benchmark document by document (stored per-document values -> paired strata).

A benchmark's headline is read from each of its task entries' metric and filter; the stored per-document values
(suite/store/samples.py) of those pairs are matched between two runs on (task, doc_id), so only documents both runs
scored count (two --limit runs of different sizes compare on their common documents). How the documents weigh
follows the headline: `aggregate: lm-eval` (one task, or one group that lm-eval averages by sub-task size, as every
group of the shipped suites does) is a single pooled stratum; `aggregate: mean` is one stratum per task entry, each
weighing 1/k. `suite.eval.significance` then does the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from suite.eval.benchmarks import Benchmark
from suite.eval.significance import PairedResult, Stratum, compare_paired, compare_stderr, strata
from suite.store.samples import sample_values


@dataclass
class BenchmarkSamples:
    """The stored per-document headline values of some runs of one benchmark, loaded in one query."""

    benchmark: Benchmark
    frame: Any  # DataFrame: run_id, part, task, doc_id, value

    @classmethod
    def load(cls, con: Any, benchmark: Benchmark, run_ids: list[str]) -> BenchmarkSamples:
        wanted = [(i, ref.metric, ref.filter) for i, ref in enumerate(benchmark.tasks)]
        return cls(benchmark, sample_values(con, run_ids, wanted))

    def has(self, run_id: str) -> bool:
        return bool((self.frame["run_id"] == run_id).any())

    def strata(self, run_a: str, run_b: str) -> list[Stratum] | None:
        """Paired strata of the two runs (None when either stored no values, or they share no document)."""
        keys = ["part", "task", "doc_id"]
        a = self.frame[self.frame["run_id"] == run_a][keys + ["value"]]
        b = self.frame[self.frame["run_id"] == run_b][keys + ["value"]]
        both = a.merge(b, on=keys, suffixes=("_a", "_b"))
        if both.empty:
            return None
        if self.benchmark.aggregate == "lm-eval":
            return strata([(both["value_a"], both["value_b"])])
        groups = [g for _, g in both.groupby("part", sort=True)]
        if len(groups) != len(self.benchmark.tasks):
            return None  # an entry with no common document: the headline mean cannot be paired
        return strata([(g["value_a"], g["value_b"]) for g in groups])


def compare_runs(samples: BenchmarkSamples | None, run_a: str, run_b: str, *, alpha: float,
                 a: tuple[float, float | None], b: tuple[float, float | None]) -> PairedResult | None:
    """Two runs compared: the paired test when both stored per-document values, else the z-test on their
    (value, stderr) pairs; None when neither kind of uncertainty is stored."""
    parts = samples.strata(run_a, run_b) if samples is not None else None
    if parts is not None:
        return compare_paired(parts, alpha=alpha)
    return compare_stderr(a[0], a[1], b[0], b[1], alpha=alpha)
