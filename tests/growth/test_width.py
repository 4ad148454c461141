"""width: exact function preservation (with and without HyperCloning noise), the noise definition, seeding, errors."""

from __future__ import annotations

import math
import random

import pytest
import torch
from growtest import grow_in_memory, plan_of, read_all, relative_error, swiglu

from growth.checkpoint import Checkpoint
from growth.foundation.errors import ConfigError, PlanError
from growth.grow import plan_growth
from growth.operators.width import neuron_map

FRESH_SEEDS = [3, 101, random.SystemRandom().randrange(2**31)]
DOWN = "model.layers.{}.mlp.down_proj.weight"


def _x(hidden: int, seed: int) -> torch.Tensor:
    return torch.randn(16, hidden, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("seed", FRESH_SEEDS)
@pytest.mark.parametrize("width", [{"factor": 2}, {"factor": 3}, {"intermediate_size": 300},
                                   {"intermediate_size": 700}])
def test_hypercloning_preserves_every_mlp(tiny_model, seed, width):
    before = read_all(tiny_model)
    grown, after, stream = grow_in_memory(tiny_model, {"op": "width", "snr_db": 10, **width}, seed=seed)
    d_new = width.get("intermediate_size") or 256 * width["factor"]
    assert grown.final.config["intermediate_size"] == d_new
    for layer in range(4):
        x = _x(128, seed + layer)
        assert relative_error(swiglu(before, layer, x), swiglu(after, layer, x)) <= 1e-5, f"seed {seed}"
        assert after[DOWN.format(layer)].shape == (128, d_new)
        measured = stream.measured[0][DOWN.format(layer)]
        assert abs(measured - 10) < 0.5, f"seed {seed}: measured {measured} dB"


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_noise_is_plus_minus_at_the_documented_power(tiny_model, seed):
    before = read_all(tiny_model)
    _, after, stream = grow_in_memory(tiny_model, {"op": "width", "factor": 2, "snr_db": 10}, seed=seed)
    w = before[DOWN.format(1)] / 2  # each of the 2 copies carries half the column: the documented W
    noise = after[DOWN.format(1)] - torch.cat([w, w], dim=1)
    left, right = noise[:, :256], noise[:, 256:]
    assert torch.allclose(left, -right, atol=1e-7)
    assert left.abs().mean() > 1e-6  # the copies really differ
    expected = w.pow(2).mean() / 10 ** (10 / 10)
    assert noise.pow(2).mean().item() == pytest.approx(expected.item(), rel=0.05)
    measured = 10 * math.log10(w.pow(2).mean().item() / noise.pow(2).mean().item())
    assert stream.measured[0][DOWN.format(1)] == pytest.approx(measured, abs=1e-3)


def test_odd_copy_count_leaves_the_unpaired_copy_clean(tiny_model):
    before = read_all(tiny_model)
    _, after, _ = grow_in_memory(tiny_model, {"op": "width", "factor": 3, "snr_db": 5})
    w = before[DOWN.format(0)] / 3
    down = after[DOWN.format(0)]
    assert torch.allclose(down[:, 512:], w, atol=0, rtol=0)
    assert not torch.allclose(down[:, :256], w)


def test_without_noise_copies_are_exact_and_rows_duplicated(tiny_model):
    before = read_all(tiny_model)
    _, after, stream = grow_in_memory(tiny_model, {"op": "width", "intermediate_size": 400})
    src, _ = neuron_map(256, 400, 0, 0, 2)
    counts = torch.bincount(src, minlength=256)
    assert set(counts.tolist()) == {1, 2} and counts.sum() == 400
    p = "model.layers.2.mlp."
    assert torch.equal(after[p + "gate_proj.weight"], before[p + "gate_proj.weight"][src])
    assert torch.equal(after[p + "up_proj.weight"], before[p + "up_proj.weight"][src])
    assert torch.equal(after[p + "down_proj.weight"], before[p + "down_proj.weight"][:, src] / counts[src])
    assert stream.measured[0] == {}


def test_plain_noise_changes_the_function(tiny_model):
    before = read_all(tiny_model)
    _, after, stream = grow_in_memory(tiny_model, {"op": "width", "factor": 2, "snr_db": 10, "noise": "plain"})
    x = _x(128, 0)
    assert relative_error(swiglu(before, 0, x), swiglu(after, 0, x)) > 1e-3
    noise = after[DOWN.format(0)] - torch.cat([before[DOWN.format(0)] / 2] * 2, dim=1)
    assert not torch.allclose(noise[:, :256], -noise[:, 256:])
    assert abs(stream.measured[0][DOWN.format(0)] - 10) < 0.5


def test_seeded_subsets_and_noise(tiny_model):
    step = {"op": "width", "intermediate_size": 300, "snr_db": 10}
    _, a, _ = grow_in_memory(tiny_model, step, seed=5)
    _, b, _ = grow_in_memory(tiny_model, step, seed=5)
    _, c, _ = grow_in_memory(tiny_model, step, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a[DOWN.format(0)], c[DOWN.format(0)])
    assert not torch.equal(neuron_map(256, 300, 5, 0, 0)[0], neuron_map(256, 300, 5, 0, 1)[0])


@pytest.mark.parametrize("params, match", [
    ({"factor": 1.5}, "integer >= 2"),
    ({"factor": 1}, "integer >= 2"),
    ({"factor": True}, "integer >= 2"),
    ({"factor": 2, "intermediate_size": 512}, "exactly one"),
    ({}, "exactly one"),
    ({"factor": 2, "snr_db": float("nan")}, "finite"),
    ({"factor": 2, "snr_db": float("inf")}, "finite"),
    ({"factor": 2, "snr_db": "10dB"}, "number"),
    ({"factor": 2, "snr_db": 10, "noise": "gauss"}, "hypercloning, plain"),
    ({"factor": 2, "noise": "plain"}, "needs snr_db"),
    ({"factor": 2, "sigma": 1}, "unknown key"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        plan_of({"op": "width", **params})


@pytest.mark.parametrize("size", [128, 256])
def test_target_must_be_larger(tiny_model, size):
    ckpt = Checkpoint.open(tiny_model)
    table = {n: (ckpt.info(n).shape, ckpt.info(n).dtype) for n in ckpt.names()}
    with pytest.raises(PlanError, match="must be larger"):
        plan_growth(ckpt.config, plan_of({"op": "width", "intermediate_size": size}), tensors=table)
