"""depth: duplicate the half-open layer range [start, end) (partial depth stacking).

`order: block` (default) lays the layers out as 0..end-1, then start..end-1 again, then end..L-1: the card's
Qwen3-4B [14, 34) gives 36 + 20 = 56 layers. `order: interleave` follows each layer of the range by its copy.
`init: copy` (default) makes the second occurrence an exact copy, which changes the function; `init: identity`
(LLaMA-Pro) zeroes the copy's tensors that write the residual stream (o_proj, down_proj and their biases), so the
copied block adds nothing and the function is preserved. Per-layer config lists (layer_types) are reordered the same
way; prefix counts (max_window_layers) are recounted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from growth.foundation.errors import ConfigError, PlanError
from growth.operators.base import ModelState, Operator, StepContext, TensorOp

ORDERS = ("block", "interleave")
INITS = ("copy", "identity")


@dataclass(frozen=True)
class DepthParams:
    start: int
    """First layer of the duplicated range (0-based, inclusive)."""
    end: int
    """End of the duplicated range (exclusive): [start, end) are duplicated, end - start layers are added."""
    order: str = "block"
    """block: 0..end-1, start..end-1, end..L-1; interleave: each layer of the range followed by its copy."""
    init: str = "copy"
    """copy: the copies are exact; identity: the copies' residual-writing tensors are zero (function preserved)."""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"depth: {name} must be an integer layer index, got {value!r}")
        if self.end <= self.start:
            raise ConfigError(f"depth: end ({self.end}) must be greater than start ({self.start}); the range "
                              "[start, end) is half-open")
        if self.order not in ORDERS:
            raise ConfigError(f"depth: order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.init not in INITS:
            raise ConfigError(f"depth: init must be one of {', '.join(INITS)}, got {self.init!r}")


def layer_order(num_layers: int, params: DepthParams) -> list[tuple[int, bool]]:
    """(source layer, is_copy) for each layer of the grown model."""
    start, end = params.start, params.end
    if params.order == "block":
        return ([(i, False) for i in range(end)] + [(i, True) for i in range(start, end)]
                + [(i, False) for i in range(end, num_layers)])
    out = []
    for i in range(num_layers):
        out.append((i, False))
        if start <= i < end:
            out.append((i, True))
    return out


def _rewrite_config(state: ModelState, order: list[tuple[int, bool]], ctx: StepContext) -> dict[str, Any]:
    keys = state.arch.keys
    config = dict(state.config)
    config[keys.num_layers] = len(order)
    for key in keys.per_layer_lists:
        values = config.get(key)
        if values is not None:
            if not isinstance(values, list) or len(values) != state.num_layers:
                raise PlanError(f"depth (step {ctx.index + 1}): config {key!r} should list one entry per layer")
            config[key] = [values[src] for src, _ in order]
    for key in keys.layer_counts:
        count = config.get(key)
        if isinstance(count, int):
            inside = [src < count for src, _ in order]
            new_count = sum(inside)
            if inside != [i < new_count for i in range(len(order))] and config.get("use_sliding_window"):
                raise PlanError(f"depth (step {ctx.index + 1}): config {key}={count} counts a layer prefix that "
                                "this order breaks up; use a range outside it or set layer_types instead")
            config[key] = new_count
    return config


def plan(params: DepthParams, state: ModelState, ctx: StepContext) -> tuple[dict[str, Any], list[TensorOp]]:
    n = state.num_layers
    if not (0 <= params.start < n and params.end <= n):
        raise PlanError(f"depth (step {ctx.index + 1}): range [{params.start}, {params.end}) is outside the "
                        f"model's layers [0, {n})")
    order = layer_order(n, params)
    by_layer: dict[int, list[str]] = {}
    head, tail = [], []
    for name in state.tensors:
        template, layer = state.arch.match(name)
        if layer is not None:
            by_layer.setdefault(layer, []).append(name)
        elif template in state.arch.pre_layers:
            head.append(name)
        else:
            tail.append(name)
    ops = [TensorOp(name, *state.tensors[name], name) for name in head]
    for new, (src, is_copy) in enumerate(order):
        for name in by_layer.get(src, []):
            template, _ = state.arch.match(name)
            shape, dtype = state.tensors[name]
            out = template.format(new)
            if is_copy and params.init == "identity" and template.writes_residual:
                ops.append(TensorOp(out, shape, dtype, None, "zeros"))
            else:
                ops.append(TensorOp(out, shape, dtype, name))
    ops += [TensorOp(name, *state.tensors[name], name) for name in tail]
    return _rewrite_config(state, order, ctx), ops


def apply(op: TensorOp, x: torch.Tensor | None, ctx: StepContext,
          measured: dict[str, float | None]) -> torch.Tensor:
    return torch.zeros(op.shape, dtype=op.dtype)


OPERATOR = Operator("depth", DepthParams, plan, preserves_function=lambda p: p.init == "identity", apply=apply)
