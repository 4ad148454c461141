"""The shape every growth operator shares: typed parameters, a planning function and a per-tensor transform.

An operator never touches weights while planning. `plan(params, state, ctx)` maps the model before the step (its
config and its tensor table: names, shapes, dtypes) to the config after it and one `TensorOp` per output tensor,
each naming at most one input tensor of the previous step. `apply(op, x, ctx, measured)` then turns that one input
tensor into the output tensor, so the executor can stream a whole plan one output tensor at a time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from growth.architecture import Architecture

COPY = "copy"  # the output is the input unchanged; the executor handles it without calling the operator


@dataclass(frozen=True)
class TensorOp:
    """How one output tensor of a step is made from (at most) one tensor of the previous step."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    source: str | None  # tensor name in the previous step; None for tensors made from nothing (zeros)
    kind: str = COPY
    args: tuple[tuple[str, Any], ...] = ()  # operator-specific, hashable and printable

    def arg(self, key: str) -> Any:
        return dict(self.args)[key]

    def describe(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        args = ", ".join(f"{k}={v}" for k, v in self.args)
        how = self.kind + (f"({args})" if args else "")
        src = f" <- {self.source}" if self.source and self.source != self.name else ""
        return f"{self.name} {list(self.shape)} {dtype} = {how}{src}"


@dataclass
class ModelState:
    """The model between two steps: its config and its tensor table, in checkpoint order."""

    config: dict[str, Any]
    arch: Architecture
    tensors: dict[str, tuple[tuple[int, ...], torch.dtype]] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return self.arch.num_layers(self.config)

    @property
    def num_parameters(self) -> int:
        total = 0
        for shape, _ in self.tensors.values():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


@dataclass(frozen=True)
class StepContext:
    """Where a step sits in its plan; random draws are seeded by (plan seed, step index, purpose)."""

    seed: int
    index: int

    def generator(self, *purpose: object) -> torch.Generator:
        """A generator whose stream depends only on the seed, the step and `purpose`, never on execution order."""
        key = ":".join(str(p) for p in (self.seed, self.index, *purpose))
        digest = hashlib.sha256(key.encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


PlanFn = Callable[[Any, ModelState, StepContext], tuple[dict[str, Any], list[TensorOp]]]
ApplyFn = Callable[[TensorOp, "torch.Tensor | None", StepContext, dict[str, "float | None"]], torch.Tensor]


@dataclass(frozen=True)
class Operator:
    """A growth operator: `params` is a dataclass whose fields (documented in place) are the YAML keys."""

    name: str
    params: type
    plan: PlanFn
    preserves_function: Callable[[Any], bool]  # whether logits must stay equal, which --verify checks
    apply: ApplyFn | None = None  # None for operators that only rename and copy tensors
    # n when an output is n whole copies of its input stacked along dim 0 and nothing else (None otherwise): its
    # bytes are then the input's n times over, which grow copies file to file instead of computing
    repeats: Callable[[TensorOp], int | None] | None = None


def copy_op(name: str, shape: tuple[int, ...], dtype: torch.dtype, source: str | None = None) -> TensorOp:
    return TensorOp(name, shape, dtype, source or name)


def new_state(before: ModelState, config: dict[str, Any], ops: list[TensorOp]) -> ModelState:
    return ModelState(config, before.arch, {op.name: (op.shape, op.dtype) for op in ops})
