"""Greedy soup (Wortsman et al., 2022, "Model soups", Recipe 1), noise-aware: rank the checkpoints by their
stored suite average, start the soup with the best, and add each next one only if the uniform average of the soup
plus it scores higher on the dev split than the soup did, beyond noise: the paired test of the two dev evaluations
over their documents (suite/select/noise.py) must say "better". Every trial is tested on the same dev split, so
alpha is spent across them: each of the (candidates - 1) possible trials is tested at alpha / (candidates - 1), and
the chance that any ingredient is kept for noise stays <= alpha. Wortsman et al. accept on "at least as well"; on a
dev split of 50 documents that accepts noise, so growbench keeps the smaller soup unless the rise is measurable
(`noise: {test: none}` restores the plain comparison). Every soup tried is really merged and evaluated (cached in
DuckDB); the recipe records each trial's dev scores, test, p-value and the level it had to beat.

Config (`--config`, all optional):
    dev: {benchmarks: [hellaswag, arc_challenge], limit: 50, backend: hf}
    max_models: 5
    noise: {test: paired, alpha: 0.05}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from growth.foundation.config import build
from growth.foundation.errors import ConfigError
from suite.select.noise import NoiseRule, dev_difference
from suite.select.selector import Chosen, SelectContext, Selection
from suite.select.strategies.candidates import CandidateScorer, dev_config
from suite.select.strategies.options import DevConfig


@dataclass
class GreedySoupConfig:
    dev: DevConfig = field(default_factory=DevConfig)
    """The dev split every soup is scored on."""
    max_models: int | None = None
    """Stop adding once the soup holds this many checkpoints (None: try every candidate)."""
    noise: NoiseRule = field(default_factory=NoiseRule)
    """A soup is accepted only when its dev score beats the current soup's beyond this test's noise."""

    def __post_init__(self) -> None:
        if self.max_models is not None and (not isinstance(self.max_models, int) or self.max_models < 1):
            raise ConfigError(f"greedy-soup max_models must be a positive integer, got {self.max_models!r}")


def select_greedy_soup(ctx: SelectContext) -> Selection:
    config = build(GreedySoupConfig, {} if ctx.config is None else ctx.config, "greedy-soup config")
    scorer = CandidateScorer(ctx, dev_config(ctx, config.dev))
    average = ctx.suite_average()
    order = [ctx.by_id(m) for m in average.index]
    soup = [order[0]]
    best = scorer.score(soup, [1.0])
    trials = len(order) - 1
    alpha = config.noise.trial_alpha(trials)
    steps = [{"tried": [order[0].name], "dev_score": best.score, "dev_scores": best.scores, "accepted": True,
              "decided_by": "the start: the best suite average", "cached": best.cached}]
    for candidate in order[1:]:
        if config.max_models is not None and len(soup) >= config.max_models:
            break
        trial = soup + [candidate]
        scored = scorer.score(trial, [1.0] * len(trial))
        test = dev_difference(ctx, config.noise, scorer.dev.benchmarks, scored, best, alpha)
        if config.noise.test == "none":
            accepted, why = scored.score >= best.score, "value (no noise check)"
        elif test is None:  # neither documents nor stderrs stored: the values decide, as everywhere else
            accepted, why = scored.score > best.score, "value (no noise estimate stored)"
        else:
            accepted = test.verdict == "better"
            why = (f"{test.test}: {test.difference:+.4f}, p = {test.p_value:.3g} "
                   + ("<" if accepted else ">=") + f" {alpha:.3g}" + ("" if accepted else " (within noise)"))
        steps.append({"tried": [c.name for c in trial], "dev_score": scored.score,
                      "dev_scores": scored.scores, "accepted": accepted, "decided_by": why, "cached": scored.cached})
        if accepted:
            soup, best = trial, scored
    chosen = [Chosen(c, 1 / len(soup), "soup ingredient",
                     {"suite_average": float(average[c.model_id]), "rank": order.index(c) + 1}) for c in soup]
    return Selection(chosen, {"dev": scorer.record(), "split": scorer.split(),
                              "noise": {**config.noise.record(), "trials": trials, "alpha_per_trial": alpha,
                                        "spent": "Bonferroni"},
                              "dev_score": best.score,
                              "order": [{"name": c.name, "suite_average": float(average[c.model_id])}
                                        for c in order],
                              "steps": steps})
