"""Muon math: equality with torch.optim.Muon (bf16 NS) and with a float64 Newton-Schulz (fp32 NS)."""

from __future__ import annotations

import pytest
import torch

from training.muon import Muon
from training.newton_schulz import NS_COEFFICIENTS, adjusted_lr, newton_schulz


def reference_ns(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The quintic iteration written out in float64, without addmm, as the ground truth."""
    a, b, c = NS_COEFFICIENTS
    x = g.double()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / x.norm()
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


@pytest.mark.parametrize("shape", [(256, 1024), (384, 96)])
def test_fp32_newton_schulz_matches_float64(shape):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    ours = newton_schulz(g, dtype=torch.float32)
    ref = reference_ns(g)
    rel = ((ours.double() - ref).norm() / ref.norm()).item()
    assert ours.dtype == torch.float32 and ours.shape == g.shape
    assert rel <= 1e-5, rel


def test_newton_schulz_orthogonalises():
    g = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    s = torch.linalg.svdvals(newton_schulz(g, dtype=torch.float32))
    assert s.min() > 0.5 and s.max() < 1.3  # U S' V^T with S' in roughly (0.7, 1.2)


def test_bf16_updates_match_torch_muon_over_ten_steps():
    gen = torch.Generator().manual_seed(0)
    shapes = [(64, 128), (128, 64), (96, 96)]
    ours = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.02) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt_ours = Muon(ours, lr=0.02, weight_decay=0.1, ns_dtype="bfloat16")
    opt_theirs = torch.optim.Muon(theirs, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    for _ in range(10):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        before_ours = [p.detach().clone() for p in ours]
        before_theirs = [p.detach().clone() for p in theirs]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
        for p, q, b0, b1 in zip(ours, theirs, before_ours, before_theirs):
            du, dt = p.detach() - b0, q.detach() - b1
            assert (du - dt).norm() / dt.norm() <= 1e-2


def test_adjusted_lr_is_moonlight_scaling():
    assert adjusted_lr(1e-4, (2560, 19456)) == pytest.approx(1e-4 * 0.2 * 19456 ** 0.5)


def test_muon_rejects_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        Muon([torch.nn.Parameter(torch.zeros(4))])
