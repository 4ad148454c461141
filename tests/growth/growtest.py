"""Helpers shared by the growth tests: plan files, in-memory growth of a real checkpoint, the SwiGLU MLP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from growth.checkpoint import Checkpoint
from growth.grow import plan_growth
from growth.plan import GrowthPlan, parse_plan
from growth.plan_stream import PlanStream


def plan_of(*steps: dict[str, Any], seed: int = 0):
    return parse_plan({"name": "test", "seed": seed, "steps": list(steps)}, "test plan")


def write_plan(path: Path, *steps: dict[str, Any], seed: int = 0) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "seed": seed, "steps": list(steps)}))
    return path


def grow_in_memory(src: Path, *steps: dict[str, Any], seed: int = 0) -> tuple[GrowthPlan, dict, PlanStream]:
    """Plan against the real checkpoint and compute the final state dict with the plan stream."""
    ckpt = Checkpoint.open(src)
    table = {n: (ckpt.info(n).shape, ckpt.info(n).dtype) for n in ckpt.names()}
    grown = plan_growth(ckpt.config, plan_of(*steps, seed=seed), tensors=table)
    stream = PlanStream(grown, ckpt)
    return grown, stream.state_dict(len(grown.steps) - 1), stream


def read_all(path: Path) -> dict[str, torch.Tensor]:
    ckpt = Checkpoint.open(path)
    return {n: ckpt.read(n) for n in ckpt.names()}


def swiglu(state: dict[str, torch.Tensor], layer: int, x: torch.Tensor) -> torch.Tensor:
    p = f"model.layers.{layer}.mlp."
    gate, up, down = (state[p + k + "_proj.weight"].double() for k in ("gate", "up", "down"))
    return (torch.nn.functional.silu(x @ gate.T) * (x @ up.T)) @ down.T


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()
