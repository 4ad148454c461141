"""The card's anchors strategy: named roles, each with a key metric and a weight, each filled by the best
checkpoint not already taken on that metric (so two GPQA roles get the best and the second-best checkpoint).

Roles come from an editable YAML (`--config`); the default is suite/select/recipes/<suite>-anchors.yaml, the card's
recipe. Pure store reads: nothing is evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from growth.foundation.config import build, read_yaml
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped
from suite.select.selector import Chosen, SelectContext, Selection

RECIPES = Shipped("anchors recipe", Path(__file__).resolve().parents[1] / "recipes", suffix="-anchors.yaml")
"""Role recipes by suite name: recipes/<suite>-anchors.yaml."""


@dataclass
class Role:
    role: str
    """What the checkpoint is chosen for (e.g. code anchor)."""
    metric: str
    """Benchmark key whose primary score ranks the candidates for this role."""
    weight: float
    """The role's weight in the merge."""

    def __post_init__(self) -> None:
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise ConfigError(f"role {self.role!r}: weight {self.weight!r} is not a finite number")


@dataclass
class AnchorsConfig:
    roles: list[Role]

    def __post_init__(self) -> None:
        if not self.roles:
            raise ConfigError("anchors config: `roles` must be a non-empty list")


def load_anchors(ctx: SelectContext) -> AnchorsConfig:
    """The roles from --config, else the shipped recipe for the suite (a suite with none: pass --config)."""
    data = ctx.config
    if data is None:
        from suite.eval.benchmarks import load_suite

        suite = load_suite(ctx.options.suite).name
        if suite not in RECIPES.names():
            raise ConfigError(f"no shipped anchors recipe for suite {suite!r} (there are: "
                              f"{', '.join(RECIPES.names())}); pass --config ROLES.yaml")
        data = read_yaml(RECIPES.resolve(suite))
    return build(AnchorsConfig, data, "anchors config")


def select_anchors(ctx: SelectContext) -> Selection:
    config = load_anchors(ctx)
    if len(ctx.candidates) < len(config.roles):
        raise ConfigError(f"{len(ctx.candidates)} candidate checkpoints for {len(config.roles)} roles; "
                          "each role needs a distinct checkpoint")
    taken: set[str] = set()
    chosen = []
    for role in config.roles:
        if role.metric not in ctx.table.columns or ctx.table[role.metric].isna().all():
            raise ConfigError(f"role {role.role!r}: no stored {role.metric!r} score for any candidate in "
                              f"suite {ctx.options.suite!r}; evaluate the candidates on it first")
        ranked = ctx.table[role.metric].dropna().sort_values(ascending=False, kind="stable")
        free = [m for m in ranked.index if m not in taken]
        if not free:
            raise ConfigError(f"role {role.role!r}: every candidate scored on {role.metric!r} is already "
                              "taken by an earlier role")
        best = free[0]
        taken.add(best)
        chosen.append(Chosen(ctx.by_id(best), role.weight, role.role,
                             {role.metric: float(ranked[best]), "rank": list(ranked.index).index(best) + 1}))
    ranking = {r.metric: {ctx.by_id(m).name: float(v) for m, v in ctx.table[r.metric].dropna().items()}
               for r in config.roles}
    return Selection(chosen, {"roles": [vars(r) for r in config.roles], "scores": ranking})
