"""The math of Muon as plain functions, testable on a CPU tensor: quintic Newton-Schulz orthogonalisation, the Nesterov
momentum blend and Moonlight's learning-rate scaling. training/muon.py (the optimizer: state and param groups) and
training/distributed_muon.py (the owner-rank Newton-Schulz of sharded matrices) both build on it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
EPS = 1e-7


def newton_schulz(g: Tensor, *, steps: int = NS_STEPS, coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  eps: float = EPS, dtype: torch.dtype = torch.float32) -> Tensor:
    """Approximately orthogonalise a 2-D matrix (U S' V^T with S' near 1) in `dtype`; returns that dtype."""
    if g.ndim != 2:
        raise ValueError(f"Newton-Schulz needs a 2-D matrix, got shape {tuple(g.shape)}")
    a, b, c = coefficients
    x = g.to(dtype)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def nesterov_momentum(grad: Tensor, buf: Tensor, momentum: float, nesterov: bool = True) -> Tensor:
    """Update the EMA momentum buffer in place and return the direction to orthogonalise."""
    buf.lerp_(grad, 1 - momentum)
    return grad.lerp(buf, momentum) if nesterov else buf


def adjusted_lr(lr: float, shape: torch.Size | tuple[int, ...]) -> float:
    """Moonlight's scaling: an orthogonal update of RMS ~ 0.2, like AdamW's, whatever the matrix shape."""
    return lr * 0.2 * math.sqrt(max(shape[0], shape[1]))


def orthogonalised(update: Tensor, *, steps: int, coefficients: tuple[float, float, float], eps: float,
                   dtype: torch.dtype) -> Tensor:
    """Newton-Schulz of a plain or sharded (DTensor) update, returned in the update's own layout and dtype."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(update, DTensor):
        full = newton_schulz(update.full_tensor(), steps=steps, coefficients=coefficients, eps=eps, dtype=dtype)
        return distribute_tensor(full.to(update.dtype), update.device_mesh, update.placements, src_data_rank=None)
    return newton_schulz(update, steps=steps, coefficients=coefficients, eps=eps, dtype=dtype).to(update.dtype)


def default_ns_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 where matmuls have bf16 units (CUDA), fp32 on CPU."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
