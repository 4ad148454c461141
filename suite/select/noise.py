"""How the selection strategies tell a real difference from noise: each uses the uncertainty the store holds.

`test: paired` (the default) pairs two runs document by document (suite/eval/paired_runs.py and
suite/eval/significance.py: McNemar's test with continuity correction for 0/1 metrics, else the paired sign-flip
test) and falls back to a z-test on the stored standard errors for a run that stored no per-document values;
`test: stderr` always uses that z-test; `test: none` compares values only, as a leaderboard does. A difference
counts when the test's p-value is below `alpha` (two-sided).

Strategies that try many moves on one dev split (greedy-soup, search) spend alpha across their trials
(`trial_alpha`: Bonferroni, each trial at alpha / trials), so the chance that any kept move is noise stays <= alpha.

    NoiseRule(test="paired", alpha=0.05)
    TableNoise(ctx, rule).test("mbpp", model_a, model_b)         # two candidates' stored runs of one benchmark
    dev_difference(ctx, rule, benchmarks, new, old, alpha)       # two dev evaluations, their mean over benchmarks
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from growth.foundation.errors import ConfigError
from suite.eval.significance import (
    PairedResult,
    Stratum,
    average_strata,
    compare_paired,
    compare_stderr,
    mean_stderr,
)

TESTS = ("paired", "stderr", "none")


@dataclass
class NoiseRule:
    """The `noise` section of a selector config: which test tells a difference from noise, at which alpha."""

    test: str = "paired"
    """paired: per-document paired test (McNemar / sign-flip), stderr z-test where documents were not stored;
    stderr: the z-test on stored standard errors only; none: no noise check, values decide."""
    alpha: float = 0.05
    """Two-sided significance level a difference must reach to count; for greedy-soup and search, the chance that
    any kept move is noise (spent across their trials)."""

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise ConfigError(f"noise.test must be one of {', '.join(TESTS)}, got {self.test!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ConfigError(f"noise.alpha must be a number between 0 and 1, got {self.alpha!r}")

    def record(self) -> dict[str, Any]:
        return {"test": self.test, "alpha": self.alpha}

    def trial_alpha(self, trials: int) -> float:
        """The level of each of `trials` tests on one dev split, so that all of them together keep a false move's
        chance <= alpha (Bonferroni: valid whatever the dependence between trials)."""
        return self.alpha / max(1, trials)


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


class TableNoise:
    """Tests between candidates' stored runs (the selector's score table), per-document values loaded once per
    benchmark for every candidate."""

    def __init__(self, ctx: Any, rule: NoiseRule) -> None:
        self.ctx, self.rule = ctx, rule
        self._samples: dict[str, Any] = {}

    def _loaded(self, benchmark: str) -> Any:
        if benchmark not in self._samples:
            from suite.eval.paired_runs import BenchmarkSamples

            runs = self.ctx.runs[benchmark].dropna().tolist()
            with self.ctx.store.connect(read_only=True) as con:
                self._samples[benchmark] = BenchmarkSamples.load(con, self.ctx.options.suite.get(benchmark), runs)
        return self._samples[benchmark]

    def test(self, benchmark: str, a: str, b: str) -> PairedResult | None:
        """A (model id) against B on `benchmark`; None when the rule is `none` or no uncertainty is stored."""
        from suite.eval.paired_runs import compare_runs

        if self.rule.test == "none":
            return None
        samples = self._loaded(benchmark) if self.rule.test == "paired" else None
        return compare_runs(samples, self.ctx.runs.loc[a, benchmark], self.ctx.runs.loc[b, benchmark],
                            alpha=self.rule.alpha, a=self._value(a, benchmark), b=self._value(b, benchmark))

    def _value(self, model_id: str, benchmark: str) -> tuple[float, float | None]:
        return float(self.ctx.table.loc[model_id, benchmark]), _number(self.ctx.stderr.loc[model_id, benchmark])


def dev_difference(ctx: Any, rule: NoiseRule, benchmarks: list[str], new: Any, old: Any, alpha: float
                   ) -> PairedResult | None:
    """The dev score of `new` (a candidates.Scored) against `old`'s at `alpha`: the mean over the dev benchmarks,
    tested on their documents jointly (each benchmark weighs 1/k, its documents as its headline weighs them)."""
    if rule.test == "none":
        return None
    from suite.eval.paired_runs import BenchmarkSamples

    suite = ctx.options.suite
    paired: list[list[Stratum]] = []
    if rule.test == "paired":
        with ctx.store.connect(read_only=True) as con:
            for key in benchmarks:
                found = BenchmarkSamples.load(con, suite.get(key), [new.runs[key], old.runs[key]])
                parts = found.strata(new.runs[key], old.runs[key])
                if parts is None:
                    paired = []
                    break
                paired.append(parts)
    if paired:
        return compare_paired(average_strata(paired), alpha=alpha)
    se_new = mean_stderr([new.stderrs.get(k) for k in benchmarks])
    se_old = mean_stderr([old.stderrs.get(k) for k in benchmarks])
    if se_new is None or se_old is None:
        return None
    return compare_stderr(new.score, se_new, old.score, se_old, alpha=alpha)
