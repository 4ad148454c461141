"""Throughput accounting: model FLOPs per token, and MFU against a peak measured once per run.

FLOPs per trained token = 6 N + 12 L n_heads d_head seq_len, the count torchtitan and PaLM use. N counts every matmul
weight: all parameters except the input embedding table (a lookup), with the lm_head counted even when it is tied;
the second term is attention's QK^T and AV. Recomputation under activation checkpointing is not counted: MFU counts
the model's FLOPs, not the hardware's.

The peak is measured, once per run, as the best of a few matmuls of the model's own shape, (micro_batch x seq_len,
hidden) @ (hidden, ffn), in the compute dtype on the run's device, unless the config gives `peak_tflops`. CPU MFU is
thus relative to what this CPU reaches with torch on that shape, and GPU MFU to the dense rate the kernel library
reaches (usually somewhat below the datasheet figure, which `peak_tflops` can supply instead).
"""

from __future__ import annotations

import time
from typing import Any, Mapping, NamedTuple

import torch

from growth.foundation.errors import ConfigError


class ModelDims(NamedTuple):
    """A decoder's sizes (head counts, not widths: q_heads x head_dim is the query width)."""

    hidden: int
    ffn: int
    layers: int
    q_heads: int
    kv_heads: int
    head_dim: int
    vocab: int


def model_dims(config: Mapping[str, Any]) -> ModelDims:
    """The sizes FLOP and memory counts need, from a decoder's config.json; ConfigError naming a missing key."""
    try:
        h, f, layers, nq, vocab = (config[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                       "num_attention_heads", "vocab_size"))
    except KeyError as e:
        raise ConfigError(f"model config has no {e.args[0]!r}, which the FLOP and memory figures need") from None
    return ModelDims(h, f, layers, nq, config.get("num_key_value_heads") or nq, config.get("head_dim") or h // nq,
                     vocab)


def matmul_parameters(config: Mapping[str, Any]) -> int:
    """Weights that take part in a matmul: the decoder layers' projections and the lm_head (tied or not)."""
    h, f, layers, nq, nkv, d, vocab = model_dims(config)
    per_layer = h * nq * d * 2 + h * nkv * d * 2 + 3 * h * f
    return layers * per_layer + vocab * h


def flops_per_token(config: Mapping[str, Any], seq_len: int) -> float:
    """Training FLOPs (forward + backward) per token: 6 N + 12 L n_heads d_head seq_len."""
    _, _, layers, nq, _, d, _ = model_dims(config)
    return 6 * matmul_parameters(config) + 12 * layers * nq * d * seq_len


def measure_peak_flops(config: Mapping[str, Any], tokens: int, dtype: torch.dtype, device: torch.device,
                       repeats: int = 3) -> float:
    """FLOP/s of the best of `repeats` matmuls (tokens x hidden) @ (hidden x ffn) on `device` in `dtype`."""
    h, f = config["hidden_size"], config["intermediate_size"]
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(tokens, h, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(h, f, generator=gen).to(device=device, dtype=dtype)
    best = float("inf")
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first call warms up
            best = min(best, time.perf_counter() - t)
    return 2 * tokens * h * f / best


def mfu(tokens_per_s_per_device: float, flops_per_token_: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s per device over the peak."""
    return tokens_per_s_per_device * flops_per_token_ / peak_flops


H100_BF16_PEAK = 989e12
"""Dense bf16 FLOP/s of one H100 SXM (NVIDIA's datasheet, no sparsity): the planner's GPU unless peak_tflops says."""
PLANNED_MFU = 0.4


def planned_step_seconds(config: Mapping[str, Any], seq_len: int, tokens_per_step: int, world: int,
                         peak_flops: float = H100_BF16_PEAK, utilisation: float = PLANNED_MFU) -> float:
    """The planner's GPU time of one optimizer step: the step's model FLOPs over `world` devices at `utilisation`
    of `peak_flops` (the card's run on 256 H100s at 40% MFU: 13.9 s)."""
    return flops_per_token(config, seq_len) * tokens_per_step / (world * peak_flops * utilisation)
