"""Growth plans: YAML -> validated dataclasses -> per-tensor operations, all before any weight is read.

A plan file is a mapping with `name`, `description`, `seed` and `steps`, a list of operator calls:

    steps:
      - op: untie
      - {op: width, intermediate_size: 19456, snr_db: 10, stage: width-expanded}
      - {op: depth, start: 14, end: 34, stage: stacked}

Each step's keys besides `op` and `stage` are the operator's parameter fields (`growth.operators.*`); unknown keys
are rejected. `stage` optionally names a checkpoint of the card's pipeline; the parameter summary reports counts at
stage boundaries. `build` turns a plan and a checkpoint's config and tensor table into a `GrowthPlan`: per step the
config after it and one `TensorOp` per output tensor (source tensor, operation, target shape), which can be printed
and shape-checked without loading weights. Shipped plans live in `growth/plans/<name>.yaml`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from growth.architecture import for_config
from growth.foundation.config import from_mapping, read_yaml
from growth.foundation.errors import ConfigError, PlanError
from growth.foundation.registry import Shipped
from growth.operators import OPERATORS
from growth.operators.base import ModelState, Operator, StepContext, TensorOp, new_state

PLAN_DIR = Path(__file__).with_name("plans")
PLANS = Shipped("growth plan", PLAN_DIR)
SEED_CONFIGS = Shipped("seed config", PLAN_DIR, suffix=".config.json")
"""Published config.json files of seed models (e.g. qwen3-4b-base), for dry runs without the weights."""


@dataclass(frozen=True)
class StepConfig:
    op: str
    """Operator name: untie, width or depth."""
    params: Any
    """The operator's parameter dataclass."""
    stage: str | None = None
    """Optional name of the pipeline stage this step completes (reported in the parameter summary)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, **dataclasses.asdict(self.params)}
        return out | ({"stage": self.stage} if self.stage else {})


@dataclass(frozen=True)
class PlanConfig:
    name: str
    """The plan's name (a shipped plan's file stem)."""
    steps: tuple[StepConfig, ...]
    """Operator calls, applied in order."""
    description: str = ""
    """What the plan reproduces and why."""
    seed: int = 0
    """Seed for neuron subsets and noise; `growbench grow --seed` overrides it."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seed": self.seed,
                "steps": [s.to_dict() for s in self.steps]}


def parse_step(raw: Any, where: str) -> StepConfig:
    if not isinstance(raw, Mapping) or "op" not in raw:
        raise ConfigError(f"{where}: each step must be a mapping with an 'op' key")
    operator = OPERATORS.get(raw["op"])
    stage = raw.get("stage")
    if stage is not None and not isinstance(stage, str):
        raise ConfigError(f"{where}: stage must be a string")
    params = from_mapping(operator.params, {k: v for k, v in raw.items() if k not in ("op", "stage")},
                          f"{where} ({raw['op']})")
    return StepConfig(raw["op"], params, stage)


def parse_plan(raw: Any, where: str) -> PlanConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a plan must be a mapping with a 'steps' list")
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f"{where}: 'steps' must be a non-empty list of operator calls")
    parsed = tuple(parse_step(s, f"{where} step {i + 1}") for i, s in enumerate(steps))
    plan = from_mapping(PlanConfig, {**raw, "steps": parsed, "name": raw.get("name", Path(where).stem)}, where)
    if not isinstance(plan.seed, int) or isinstance(plan.seed, bool):
        raise ConfigError(f"{where}: seed must be an integer, got {plan.seed!r}")
    return plan


def load_plan(name_or_path: str | Path) -> PlanConfig:
    """A shipped plan by name, or a YAML file by path."""
    path = PLANS.resolve(name_or_path)
    return parse_plan(read_yaml(path), str(path))


def preserving_steps(plan: PlanConfig) -> int:
    """How many of the plan's leading steps claim to preserve the function (untie, HyperCloning width, identity
    depth): the checkpoint after them must score exactly as the seed does, which the pipeline measures."""
    count = 0
    for step in plan.steps:
        if not OPERATORS.get(step.op).preserves_function(step.params):
            break
        count += 1
    return count


def first_steps(plan: PlanConfig, count: int) -> PlanConfig:
    """The plan's first `count` steps as a plan of their own (same seed)."""
    return dataclasses.replace(plan, name=f"{plan.name} (steps 1-{count})", steps=plan.steps[:count],
                               description=f"the first {count} step(s) of {plan.name}")


@dataclass
class StepPlan:
    index: int
    config: StepConfig
    operator: Operator
    context: StepContext
    before: ModelState
    after: ModelState
    ops: dict[str, TensorOp]  # output tensor name -> how it is made, in output order


@dataclass
class GrowthPlan:
    plan: PlanConfig
    seed: int
    source: ModelState
    steps: list[StepPlan]

    @property
    def final(self) -> ModelState:
        return self.steps[-1].after

    def output_ops(self) -> list[TensorOp]:
        return list(self.steps[-1].ops.values())

    def stage_counts(self) -> list[tuple[str, int]]:
        """(label, parameters) at the source and after each stage: a step with `stage` ends one (so do all steps
        when none has a stage), and the last step always does."""
        staged = any(s.config.stage for s in self.steps)
        out = [("source", self.source.num_parameters)]
        for step in self.steps:
            if step.config.stage or not staged or step is self.steps[-1]:
                out.append((step.config.stage or step.config.op, step.after.num_parameters))
        return out

    def root(self, name: str) -> tuple[int, str]:
        """(step, tensor) that output `name` is an unchanged copy of, following copies back; step -1 is the source."""
        step = len(self.steps) - 1
        while step >= 0 and self.steps[step].ops[name].kind == "copy" and self.steps[step].ops[name].source:
            name, step = self.steps[step].ops[name].source, step - 1
        return step, name

    def write_order(self) -> list[TensorOp]:
        """Output ops with those computed from the same intermediate tensor adjacent (a duplicated layer's copies
        follow its original), so the plan stream (growth/plan_stream.py) computes each intermediate once; the index maps names to shards."""
        groups: dict[tuple[int, str], list[TensorOp]] = {}
        for op in self.output_ops():
            groups.setdefault(self.root(op.name), []).append(op)
        return [op for group in groups.values() for op in group]

    def describe_ops(self) -> list[str]:
        return [f"step {s.index + 1} {s.config.op}: {op.describe()}" for s in self.steps for op in s.ops.values()
                if op.kind != "copy" or op.source != op.name]


def build(plan: PlanConfig, config: dict[str, Any], tensors: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
          seed: int | None = None) -> GrowthPlan:
    """Plan every step against a config and tensor table; raises PlanError before any weight is read."""
    arch = for_config(config)
    state = ModelState(dict(config), arch, {})
    tie_key = arch.keys.tie_embeddings
    if tie_key not in config:  # transformers' per-class default; the checkpoint's contents say which applies
        state.config[tie_key] = arch.lm_head not in tensors
    if state.config[tie_key]:  # a tied checkpoint may still store the head; nothing loads it
        tensors = {n: v for n, v in tensors.items() if n != arch.lm_head}
    arch.check_complete(list(tensors), state.num_layers)
    state.tensors = {n: tensors[n] for n in arch.ordered(list(tensors), state.num_layers)}
    arch.check_shapes(state.tensors, state.config, "source checkpoint")
    seed = plan.seed if seed is None else seed
    source, steps = state, []
    for i, step in enumerate(plan.steps):
        operator = OPERATORS.get(step.op)
        ctx = StepContext(seed, i)
        new_config, ops = operator.plan(step.params, state, ctx)
        after = new_state(state, new_config, ops)
        if len(after.tensors) != len(ops):
            raise PlanError(f"step {i + 1} ({step.op}) would write a tensor name twice")
        arch.check_complete(list(after.tensors), after.num_layers)
        arch.check_shapes(after.tensors, after.config, f"after step {i + 1} ({step.op})")
        steps.append(StepPlan(i, step, operator, ctx, state, after, {op.name: op for op in ops}))
        state = after
    return GrowthPlan(plan, seed, source, steps)
