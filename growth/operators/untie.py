"""untie: give the model its own output head, a copy of the input embeddings.

A tied checkpoint stores only `model.embed_tokens.weight`; after this step `lm_head.weight` is a separate copy and
config `tie_word_embeddings` is false, so the two can drift apart in training. The function is unchanged. The card's
7.10B and 10.61B parameter counts include the untied head (4,022,468,096 + 388,956,160 for Qwen3-4B-Base).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from growth.foundation.errors import PlanError
from growth.operators.base import ModelState, Operator, StepContext, TensorOp, copy_op


@dataclass(frozen=True)
class UntieParams:
    """untie takes no parameters."""


def plan(params: UntieParams, state: ModelState, ctx: StepContext) -> tuple[dict[str, Any], list[TensorOp]]:
    arch, keys = state.arch, state.arch.keys
    if not state.config[keys.tie_embeddings]:
        raise PlanError(f"untie (step {ctx.index + 1}): the model is already untied "
                        f"({keys.tie_embeddings} is false); remove the step from the plan")
    if arch.embed not in state.tensors:
        raise PlanError(f"untie (step {ctx.index + 1}): checkpoint lacks {arch.embed!r}")
    shape, dtype = state.tensors[arch.embed]
    ops = [copy_op(name, s, d) for name, (s, d) in state.tensors.items() if name != arch.lm_head]
    ops.append(copy_op(arch.lm_head, shape, dtype, source=arch.embed))
    config = dict(state.config)
    config[keys.tie_embeddings] = False
    return config, ops


OPERATOR = Operator("untie", UntieParams, plan, preserves_function=lambda params: True)
