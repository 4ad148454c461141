"""Anchors: named roles, each with a key metric and a weight, filled in order by one checkpoint each.

The card says only that its 5 merged checkpoints were "each selected for a unique strength" and lists each one's
role, weight and key metric. How a role's checkpoint is found is growbench's reading, not the card's:

1. rank the checkpoints not taken by an earlier role by their stored score on the role's metric;
2. take the best only when it beats every other free checkpoint beyond noise (suite/select/noise.py: by default the
   paired test over the documents at alpha 0.05, falling back to the stored standard errors, and where neither is
   stored, to the values: a higher value beats, an equal one ties);
3. otherwise the checkpoints within noise of the best are tied, and the recipe's `tie_break` picks among them:
   `later` (the highest step: the model trained longest; the default), `earlier`, or `value` (the highest score
   anyway). Each chosen checkpoint's evidence says which rule decided, and holds every comparison behind it; the
   recipe's `split` says which runs (and how many documents) the scores rest on.

Roles come from an editable YAML (`--config`); the default is suite/select/recipes/<suite>-anchors.yaml. Pure store
reads: nothing is evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.config import build, read_yaml
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped
from suite.eval.benchmarks import Suite
from suite.select.noise import NoiseRule, TableNoise
from suite.select.selector import Chosen, SelectContext, Selection

RECIPES = Shipped("anchors recipe", Path(__file__).resolve().parents[1] / "recipes", suffix="-anchors.yaml")
"""Role recipes by suite name: recipes/<suite>-anchors.yaml."""
TIE_BREAKS = ("later", "earlier", "value")


@dataclass
class Role:
    role: str
    """What the checkpoint is chosen for (e.g. code anchor)."""
    metric: str
    """Benchmark key whose primary score ranks the candidates for this role."""
    weight: float
    """The role's weight in the merge."""
    card_step: int | None = None
    """The iteration the card's merge took for this role, as printed there: a record for comparison (the pipeline's
    dry run checks it against the schedule), never used to choose."""

    def __post_init__(self) -> None:
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise ConfigError(f"role {self.role!r}: weight {self.weight!r} is not a finite number")


@dataclass
class AnchorsConfig:
    roles: list[Role]
    noise: NoiseRule = field(default_factory=NoiseRule)
    """When the best checkpoint counts as beating the others (test and alpha)."""
    tie_break: str = "later"
    """Which of the checkpoints within noise of the best a role takes: later | earlier | value."""

    def __post_init__(self) -> None:
        if not self.roles:
            raise ConfigError("anchors config: `roles` must be a non-empty list")
        if self.tie_break not in TIE_BREAKS:
            raise ConfigError(f"anchors tie_break must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break!r}")


def load_anchors(suite: Suite, config: Any = None) -> AnchorsConfig:
    """The roles given (--config's mapping), else the shipped recipe for the suite (a suite with none: pass
    --config)."""
    if config is None:
        name = suite.name
        if name not in RECIPES.names():
            raise ConfigError(f"no shipped anchors recipe for suite {name!r} (there are: "
                              f"{', '.join(RECIPES.names())}); pass --config ROLES.yaml")
        config = read_yaml(RECIPES.resolve(name))
    return build(AnchorsConfig, config, "anchors config")


def _compare(noise: TableNoise, metric: str, best: str, other: str, scores: Any) -> dict[str, Any]:
    """The best free checkpoint against another on the role's metric: the noise rule's test, or, where no noise
    estimate is stored (no per-document values, no stderr), the values themselves, as the leaderboard's marks do."""
    result = noise.test(metric, best, other)
    if result is None:
        return {"score": float(scores[other]), "test": "values (no noise estimate stored)",
                "beaten": bool(scores[best] > scores[other])}
    return {"score": float(scores[other]), "difference": result.difference, "p_value": result.p_value,
            "test": result.test, "beaten": result.verdict == "better"}


def _pick(ctx: SelectContext, config: AnchorsConfig, noise: TableNoise, role: Role, free: list[str],
          scores: Any, taken: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The role's checkpoint among `free` (ranked best first) and the evidence of how it was decided. Claiming that
    the best beats every other needs each of those tests to reject, so it holds at alpha without adjustment (an
    intersection-union test)."""
    best = free[0]
    if len(free) == 1:
        earlier = ", ".join(f"{ctx.by_id(m).name} ({r})" for m, r in taken.items())
        return best, {"decided_by": "the only free checkpoint" + (f"; earlier roles took {earlier}" if earlier
                                                                   else "")}
    if config.noise.test == "none":
        return best, {"decided_by": "value"}
    compared = {m: _compare(noise, role.metric, best, m, scores) for m in free[1:]}
    runner_up = compared[free[1]]
    tied = [best] + [m for m, c in compared.items() if not c["beaten"]]
    evidence: dict[str, Any] = {"runner_up": ctx.by_id(free[1]).name, "p_value": runner_up.get("p_value"),
                                "test": runner_up["test"],
                                "compared": {ctx.by_id(m).name: c for m, c in compared.items()}}
    by_value = [ctx.by_id(m).name for m, c in compared.items() if "p_value" not in c]
    how = f" (alpha {config.noise.alpha:g}" + (f"; by value against {', '.join(by_value)}: no noise estimate stored)"
                                                if by_value else ")")
    if len(tied) == 1:
        return best, {**evidence, "decided_by": "beats every other free checkpoint beyond noise" + how}
    step = {m: ctx.by_id(m).step for m in tied}
    if config.tie_break == "value" or any(s is None for s in step.values()):
        chosen, rule = best, "value"
    else:
        chosen = (max if config.tie_break == "later" else min)(tied, key=lambda m: step[m])
        rule = config.tie_break
    names = ", ".join(f"{ctx.by_id(m).name} ({scores[m]:.4f})" for m in tied)
    return chosen, {**evidence, "decided_by": f"tie-break {rule}: {len(tied)} checkpoints within noise of the best"
                                              f"{how}: {names}"}


def split_record(ctx: SelectContext, metrics: list[str]) -> dict[str, Any]:
    """Which documents the stored scores that chose rest on: the counted run of every candidate in the suite, the
    same runs (and documents) the leaderboard shows, so the chosen checkpoints' scores there are the ones selection
    saw, not held-out estimates."""
    documents = {k: sorted({int(n) for n in ctx.documents[k].dropna()}) for k in metrics
                 if ctx.documents is not None and k in ctx.documents.columns}
    return {"kind": "suite runs", "suite": ctx.options.suite.name, "documents": documents,
            "note": "the same runs and documents the leaderboard shows (not held out)"}


def select_anchors(ctx: SelectContext) -> Selection:
    config = load_anchors(ctx.options.suite, ctx.config)
    if len(ctx.candidates) < len(config.roles):
        raise ConfigError(f"{len(ctx.candidates)} candidate checkpoints for {len(config.roles)} roles; "
                          "each role needs a distinct checkpoint")
    noise = TableNoise(ctx, config.noise)
    taken: dict[str, str] = {}  # model id -> the role that took it
    chosen = []
    for role in config.roles:
        if role.metric not in ctx.table.columns or ctx.table[role.metric].isna().all():
            raise ConfigError(f"role {role.role!r}: no stored {role.metric!r} score for any candidate in "
                              f"suite {ctx.options.suite.name!r}; evaluate the candidates on it first")
        ranked = ctx.table[role.metric].dropna().sort_values(ascending=False, kind="stable")
        free = [m for m in ranked.index if m not in taken]
        if not free:
            raise ConfigError(f"role {role.role!r}: every candidate scored on {role.metric!r} is already "
                              "taken by an earlier role")
        pick, evidence = _pick(ctx, config, noise, role, free, ranked, taken)
        taken[pick] = role.role
        chosen.append(Chosen(ctx.by_id(pick), role.weight, role.role,
                             {role.metric: float(ranked[pick]), "rank": list(ranked.index).index(pick) + 1,
                              **evidence}))
    ranking = {r.metric: {ctx.by_id(m).name: float(v) for m, v in ctx.table[r.metric].dropna().items()}
               for r in config.roles}
    return Selection(chosen, {"roles": [vars(r) for r in config.roles], "noise": config.noise.record(),
                              "tie_break": config.tie_break, "split": split_record(ctx, list(ranking)),
                              "scores": ranking})
