"""Selector strategies: plain functions from a score table (and, where needed, real dev evaluations) to picks.

Each strategy is `fn(ctx: SelectContext) -> Selection` (suite.select.selector), listed once in STRATEGIES:
  anchors      roles from an editable YAML, each taking the best distinct checkpoint on its key metric
  greedy-soup  Wortsman et al. 2022: add checkpoints by suite average while the merged dev score does not drop
  search       coordinate descent on the weight simplex of the top-k checkpoints, every candidate merged and
               evaluated on the dev split, cached in DuckDB
"""

from __future__ import annotations

from typing import Any, Callable

from growth.foundation.registry import Registry

STRATEGIES: Registry[Callable[..., Any]] = Registry("selection strategy")
STRATEGIES.register("anchors", "suite.select.strategies.anchors:select_anchors")
STRATEGIES.register("greedy-soup", "suite.select.strategies.greedy_soup:select_greedy_soup")
STRATEGIES.register("search", "suite.select.strategies.search:select_search")
