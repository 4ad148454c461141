"""Budgeted coordinate descent on the weight simplex of the k best checkpoints (by stored suite average).

Start from uniform weights. For each checkpoint i in turn, try moving the weights a step toward vertex i (w +
s (e_i - w)) and away from it (w - s (e_i - w), clipped at 0 and renormalised); keep a move only if the merged
model's dev score rises beyond noise (the paired test of the two dev evaluations, suite/select/noise.py; `noise:
{test: none}` keeps any rise). All moves are tested on one dev split, so alpha is spent across the budget: each of
the (budget - 1) possible trials is tested at alpha / (budget - 1), and the chance that any kept move is noise stays
<= alpha. The recipe records every trial's weights, dev scores, p-value and the level it had to beat. When a full pass over the k coordinates improves nothing, halve the step, down to
`min_step`. Every candidate is really merged and evaluated; `budget` counts candidates including cached ones,
so a re-run walks the same path and is answered entirely from the DuckDB cache.

Config (`--config`, all optional):
    dev: {benchmarks: [hellaswag], limit: 50}
    k: 3
    budget: 12
    step: 0.2
    min_step: 0.05
    noise: {test: paired, alpha: 0.05}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from growth.foundation.config import build
from growth.foundation.errors import ConfigError
from suite.select.noise import NoiseRule, dev_difference
from suite.select.selector import Candidate, Chosen, SelectContext, Selection
from suite.select.strategies.candidates import CandidateScorer, Scored, dev_config
from suite.select.strategies.options import DevConfig

DECIMALS = 4


@dataclass
class SearchConfig:
    dev: DevConfig = field(default_factory=DevConfig)
    """The dev split every candidate is scored on."""
    k: int = 3
    """How many checkpoints (the best by stored suite average) share the weights."""
    budget: int = 12
    """Candidates to score, the uniform start included."""
    step: float = 0.2
    """First move size along a coordinate, as a fraction of the way to the vertex."""
    min_step: float = 0.05
    """Stop once the step would shrink below this."""
    noise: NoiseRule = field(default_factory=NoiseRule)
    """A move is kept only when its dev score beats the current one's beyond this test's noise."""

    def __post_init__(self) -> None:
        for name in ("k", "budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"search {name} must be a positive integer, got {value!r}")
        if not 0 < self.min_step <= self.step < 1:
            raise ConfigError(f"search needs 0 < min_step <= step < 1, got step {self.step}, min_step "
                              f"{self.min_step}")


def move(weights: list[float], i: int, step: float) -> list[float]:
    """Move toward vertex i (step > 0) or away from it (step < 0), staying on the simplex, rounded."""
    moved = [max(0.0, w + step * ((1.0 if j == i else 0.0) - w)) for j, w in enumerate(weights)]
    total = sum(moved)
    moved = [round(w / total, DECIMALS) for w in moved]
    top = max(range(len(moved)), key=moved.__getitem__)
    moved[top] = round(moved[top] + 1.0 - sum(moved), DECIMALS)
    return moved


def select_search(ctx: SelectContext) -> Selection:
    config = build(SearchConfig, {} if ctx.config is None else ctx.config, "search config")
    average = ctx.suite_average()
    if len(average) < config.k:
        raise ConfigError(f"search k={config.k} but only {len(average)} candidate checkpoints are scored")
    members: list[Candidate] = [ctx.by_id(m) for m in average.index[:config.k]]
    scorer = CandidateScorer(ctx, dev_config(ctx, config.dev))
    trace: list[dict] = []
    trials = config.budget - 1
    alpha = config.noise.trial_alpha(trials)

    def score(weights: list[float]) -> Scored:
        scored = scorer.score(members, weights)
        trace.append({"weights": dict(zip((m.name for m in members), weights)), "dev_score": scored.score,
                      "dev_scores": scored.scores, "cached": scored.cached})
        return scored

    def rises(new: Scored, old: Scored) -> bool:
        if config.noise.test == "none":
            kept = new.score > old.score
            trace[-1].update(kept=kept, decided_by="value (no noise check)")
            return kept
        test = dev_difference(ctx, config.noise, scorer.dev.benchmarks, new, old, alpha)
        if test is None:  # neither documents nor stderrs stored: the values decide, as everywhere else
            kept = new.score > old.score
            trace[-1].update(kept=kept, decided_by="value (no noise estimate stored)")
        else:
            kept = test.verdict == "better"
            trace[-1].update(kept=kept, p_value=test.p_value,
                             decided_by=f"{test.test}: {test.difference:+.4f}, p = {test.p_value:.3g} "
                                        + ("<" if kept else ">=") + f" {alpha:.3g}")
        return kept

    weights = move([1.0 / config.k] * config.k, 0, 0.0)
    best = score(weights)
    trace[-1].update(kept=True, decided_by="the start: uniform weights")
    seen = {tuple(weights)}
    step = config.step
    while len(trace) < config.budget and step >= config.min_step:
        improved = False
        for i in range(config.k):
            for direction in (1.0, -1.0):
                trial = move(weights, i, direction * step)
                if tuple(trial) in seen or len(trace) >= config.budget:
                    continue
                seen.add(tuple(trial))
                scored = score(trial)
                if rises(scored, best):
                    weights, best, improved = trial, scored, True
        if not improved:
            step /= 2
    chosen = [Chosen(m, w, "search", {"suite_average": float(average[m.model_id])})
              for m, w in zip(members, weights) if w > 0]
    return Selection(chosen, {"dev": scorer.record(), "split": scorer.split(),
                              "noise": {**config.noise.record(), "trials": trials, "alpha_per_trial": alpha,
                                        "spent": "Bonferroni"},
                              "dev_score": best.score,
                              "budget": config.budget,
                              "steps": trace})
