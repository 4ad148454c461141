"""Streaming evaluation of a `GrowthPlan`: one output tensor at a time, straight from the source shards.

An output tensor of step i is its `TensorOp` applied to one tensor of step i-1, recursively down to one tensor read
from the source checkpoint. Nothing is cached, so resident memory is a few copies of the largest tensor whatever the
model size; a tensor that several outputs share (a duplicated layer) is simply recomputed, and because every random
draw is seeded by (seed, step, name) the recomputation is bit-identical.
"""

from __future__ import annotations

import torch

from growth.checkpoint import Checkpoint
from growth.operators.base import COPY
from growth.plan import GrowthPlan


class Executor:
    def __init__(self, plan: GrowthPlan, source: Checkpoint) -> None:
        self.plan = plan
        self.source = source
        # measured SNR per step: {tensor name in that step's output: dB}
        self.measured: list[dict[str, float | None]] = [{} for _ in plan.steps]

    def tensor(self, step: int, name: str) -> torch.Tensor:
        """Output tensor `name` of step `step` (-1 is the source checkpoint)."""
        if step < 0:
            return self.source.read(name)
        sp = self.plan.steps[step]
        op = sp.ops[name]
        x = self.tensor(step - 1, op.source) if op.source is not None else None
        if op.kind == COPY:
            return x
        return sp.operator.apply(op, x, sp.context, self.measured[step])

    def state_dict(self, step: int) -> dict[str, torch.Tensor]:
        """The whole model after `step`, in memory (used by --verify on small models only)."""
        names = self.plan.steps[step].after.tensors if step >= 0 else self.plan.source.tensors
        return {name: self.tensor(step, name) for name in names}
