"""Anchors: named roles, each with a key metric and a weight, filled in order by one checkpoint each.

The card says only that its 5 merged checkpoints were "each selected for a unique strength" and lists each one's
role, weight and key metric. How a role's checkpoint is found is growbench's reading, not the card's:

1. rank the checkpoints not taken by an earlier role by their stored score on the role's metric;
2. take the best only when it beats every other free checkpoint beyond noise (suite/select/noise.py: by default the
   paired test over the documents at alpha 0.05, falling back to the stored standard errors);
3. otherwise the checkpoints within noise of the best are tied, and the recipe's `tie_break` picks among them:
   `later` (the highest step: the model trained longest; the default), `earlier`, or `value` (the highest score
   anyway). Each chosen checkpoint's evidence says which rule decided and with what p-value.

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


def _pick(ctx: SelectContext, config: AnchorsConfig, noise: TableNoise, role: Role, free: list[str],
          scores: Any) -> tuple[str, dict[str, Any]]:
    """The role's checkpoint among `free` (ranked best first) and the evidence of how it was decided."""
    best = free[0]
    if len(free) == 1 or config.noise.test == "none":
        return best, {"decided_by": "value" + ("" if len(free) > 1 else " (the only free checkpoint)")}
    tests = {m: noise.test(role.metric, best, m) for m in free[1:]}
    runner_up = tests[free[1]]
    tied = [best] + [m for m, t in tests.items() if t is None or t.verdict != "better"]
    evidence: dict[str, Any] = {"runner_up": ctx.by_id(free[1]).name,
                                "p_value": None if runner_up is None else runner_up.p_value,
                                "test": "no noise estimate stored" if runner_up is None else runner_up.test}
    if len(tied) == 1:
        return best, {**evidence, "decided_by": f"beats every other free checkpoint beyond noise (alpha "
                                                f"{config.noise.alpha:g})"}
    step = {m: ctx.by_id(m).step for m in tied}
    if config.tie_break == "value" or any(s is None for s in step.values()):
        chosen, rule = best, "value"
    else:
        chosen = (max if config.tie_break == "later" else min)(tied, key=lambda m: step[m])
        rule = config.tie_break
    names = ", ".join(f"{ctx.by_id(m).name} ({scores[m]:.4f})" for m in tied)
    return chosen, {**evidence, "decided_by": f"tie-break {rule}: {len(tied)} checkpoints within noise of the best "
                                              f"(alpha {config.noise.alpha:g}): {names}"}


def select_anchors(ctx: SelectContext) -> Selection:
    config = load_anchors(ctx.options.suite, ctx.config)
    if len(ctx.candidates) < len(config.roles):
        raise ConfigError(f"{len(ctx.candidates)} candidate checkpoints for {len(config.roles)} roles; "
                          "each role needs a distinct checkpoint")
    noise = TableNoise(ctx, config.noise)
    taken: set[str] = set()
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
        pick, evidence = _pick(ctx, config, noise, role, free, ranked)
        taken.add(pick)
        chosen.append(Chosen(ctx.by_id(pick), role.weight, role.role,
                             {role.metric: float(ranked[pick]), "rank": list(ranked.index).index(pick) + 1,
                              **evidence}))
    ranking = {r.metric: {ctx.by_id(m).name: float(v) for m, v in ctx.table[r.metric].dropna().items()}
               for r in config.roles}
    return Selection(chosen, {"roles": [vars(r) for r in config.roles], "noise": config.noise.record(),
                              "tie_break": config.tie_break, "scores": ranking})
