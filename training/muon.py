"""Muon for hidden weight matrices: Newton-Schulz orthogonalised Nesterov momentum (Keller Jordan; Moonlight scaling).

The math is plain functions in training/newton_schulz.py (`newton_schulz`, `nesterov_momentum`, `adjusted_lr`),
testable on a CPU tensor; `Muon` only holds state and param groups. Muon is for 2-D hidden matrices (attention and MLP projections) only: embeddings,
the lm_head, norms and biases belong to AdamW (`training.param_groups` splits them).

The update matches torch.optim.Muon(adjust_lr_fn="match_rms_adamw"): momentum as an EMA (`lerp`), Nesterov blend,
5 quintic Newton-Schulz steps with coefficients (3.4445, -4.7750, 2.0315), decoupled weight decay, and the step
scaled by 0.2 * sqrt(max(A, B)) so that AdamW's learning rate and weight decay carry over.

Newton-Schulz precision is a setting (`ns_dtype`). torch.optim.Muon always runs it in bf16; CPUs without bf16 units
are an order of magnitude slower that way, so growbench defaults to fp32 on CPU and bf16 on GPU.

Sharded parameters (FSDP2 DTensors), `distribution="owner"` (the default): each matrix is orthogonalised once, by
an owner rank chosen to balance Newton-Schulz FLOPs, and every rank gets its rows of the result back
(`training.distributed_muon`, which also gives the communication volume). `distribution="gather"` is the simple
baseline: every rank all-gathers every full momentum-blended matrix (`full_tensor()`), runs Newton-Schulz on all of
them redundantly and keeps its own rows. Both give the same update as one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from training.distributed_muon import orthogonalise_bucket, plan_buckets
from training.newton_schulz import (
    EPS,
    NS_COEFFICIENTS,
    NS_STEPS,
    adjusted_lr,
    default_ns_dtype,
    nesterov_momentum,
    orthogonalised,
)

DISTRIBUTIONS = ("owner", "gather")


class Muon(torch.optim.Optimizer):
    """Muon over 2-D parameters. `ns_dtype` is "float32", "bfloat16" or None (bf16 on CUDA, fp32 on CPU).

    The dtype is kept as a name so param groups stay plain data in checkpoints. `distribution` ("owner" or "gather")
    says how FSDP2-sharded parameters are orthogonalised; it is not saved with the state.
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = NS_STEPS,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS, eps: float = EPS,
                 ns_dtype: str | None = None, distribution: str = "owner") -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.distribution = distribution
        if lr < 0 or weight_decay < 0 or momentum < 0:
            raise ValueError("lr, weight_decay and momentum must be non-negative")
        if ns_dtype not in (None, "float32", "bfloat16", "float64"):
            raise ValueError(f"ns_dtype must be float32, bfloat16, float64 or None, got {ns_dtype!r}")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "ns_steps": ns_steps, "ns_coefficients": tuple(ns_coefficients), "eps": eps, "ns_dtype": ns_dtype}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only takes 2-D parameters, got shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        from torch.distributed.tensor import DTensor

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        owned = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self.distribution == "owner" and isinstance(p, DTensor):
                    owned.append((p, group))
                    continue
                update = nesterov_momentum(p.grad, self._buffer(p), group["momentum"], group["nesterov"])
                ortho = orthogonalised(update, steps=group["ns_steps"], coefficients=group["ns_coefficients"],
                                       eps=group["eps"], dtype=self._ns_dtype(group, p))
                _apply(p, ortho, group)
        if owned:
            self._step_owned(owned)
        return loss

    def _buffer(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p.grad)
        return state["momentum_buffer"]

    @staticmethod
    def _ns_dtype(group: dict, p: Tensor) -> torch.dtype:
        name = group["ns_dtype"]
        return getattr(torch, name) if name else default_ns_dtype(p.device)

    def _step_owned(self, owned: list) -> None:
        """Sharded parameters, bucket by bucket: momentum on local rows, Newton-Schulz on the owner, rows back."""
        group = owned[0][0].device_mesh.get_group()
        for bucket in plan_buckets([tuple(p.shape) for p, _ in owned], dist.get_world_size(group)):
            items = [owned[i] for i in bucket.items]
            updates = [nesterov_momentum(p.grad.to_local(), self._buffer(p).to_local(), g["momentum"], g["nesterov"])
                       for p, g in items]
            by_setting: dict[tuple, list[int]] = {}
            for k, (p, g) in enumerate(items):
                key = (g["ns_steps"], tuple(g["ns_coefficients"]), g["eps"], self._ns_dtype(g, p))
                by_setting.setdefault(key, []).append(k)
            for (steps, coefficients, eps, dtype), ks in by_setting.items():
                orthos = orthogonalise_bucket([updates[k] for k in ks], [tuple(items[k][0].shape) for k in ks],
                                              [bucket.owners[k] for k in ks], group, steps=steps,
                                              coefficients=coefficients, eps=eps, dtype=dtype)
                for k, ortho in zip(ks, orthos):
                    p, g = items[k]
                    _apply(p.to_local(), ortho.to(p.dtype), g, tuple(p.shape))


def _apply(p: Tensor, ortho: Tensor, group: dict, shape: tuple[int, ...] | None = None) -> None:
    """Decoupled weight decay, then the orthogonal step scaled for the full matrix's shape."""
    p.mul_(1 - group["lr"] * group["weight_decay"])
    p.add_(ortho, alpha=-adjusted_lr(group["lr"], shape or p.shape))
