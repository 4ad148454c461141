"""Streaming evaluation of a `GrowthPlan`: one output tensor at a time, straight from the source shards.

An output tensor of step i is its `TensorOp` applied to one tensor of step i-1, recursively down to one tensor read
from the source checkpoint, so resident memory is a few copies of the largest tensor whatever the model size. Only
the most recently computed tensor is remembered: `GrowthPlan.write_order` puts the outputs that share
an intermediate tensor (a duplicated layer and its copy) next to each other, so each is computed once; anything else
is recomputed, bit-identically, because every random draw is seeded by (seed, step, name). An output that is a
source tensor copied, or stacked n times along dim 0, needs no computing at all: `source_copy` finds those, and grow
has the kernel copy their bytes file to file.
"""

from __future__ import annotations

import torch

from growth.checkpoint import Checkpoint
from growth.iostats import IOStats, span
from growth.operators.base import COPY
from growth.plan import GrowthPlan


class PlanStream:
    def __init__(self, plan: GrowthPlan, source: Checkpoint, stats: IOStats | None = None) -> None:
        self.plan = plan
        self.source = source
        self.stats = stats
        # measured SNR per step: {tensor name in that step's output: dB}
        self.measured: list[dict[str, float | None]] = [{} for _ in plan.steps]
        self._last: tuple[tuple[int, str], torch.Tensor] | None = None

    def tensor(self, step: int, name: str) -> torch.Tensor:
        """Output tensor `name` of step `step` (-1 is the source checkpoint)."""
        if step >= 0 and self.plan.steps[step].ops[name].kind == COPY:
            op = self.plan.steps[step].ops[name]
            return self.tensor(step - 1, op.source)
        if self._last is not None and self._last[0] == (step, name):
            return self._last[1]
        self._last = None  # drop the previous tensor before computing the next one
        if step < 0:
            with span(self.stats, "read"):
                out = self.source.read(name)
        else:
            sp = self.plan.steps[step]
            op = sp.ops[name]
            x = self.tensor(step - 1, op.source) if op.source is not None else None
            with span(self.stats, "compute"):
                out = sp.operator.apply(op, x, sp.context, self.measured[step])
        self._last = ((step, name), out)
        return out

    def source_copy(self, name: str) -> tuple[str, int] | None:
        """(source tensor, n) when final output `name` is n copies of one source tensor stacked along dim 0 (n = 1:
        an unchanged copy), so its bytes can be copied file to file; None when it has to be computed."""
        times = 1
        for step in reversed(self.plan.steps):
            op = step.ops[name]
            n = 1 if op.kind == COPY else step.operator.repeats(op) if step.operator.repeats else None
            if n is None or op.source is None:
                return None
            times, name = times * n, op.source
        return name, times

    def state_dict(self, step: int) -> dict[str, torch.Tensor]:
        """The whole model after `step`, in memory (used by --verify on small models only)."""
        names = self.plan.steps[step].after.tensors if step >= 0 else self.plan.source.tensors
        return {name: self.tensor(step, name) for name in names}
