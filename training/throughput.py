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
from typing import Any, Mapping

import torch


def _dims(config: Mapping[str, Any]) -> tuple[int, int, int, int, int, int, int]:
    h, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    nq, nkv = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    d = config.get("head_dim") or h // nq
    return h, f, layers, nq, nkv, d, config["vocab_size"]


def matmul_parameters(config: Mapping[str, Any]) -> int:
    """Weights that take part in a matmul: the decoder layers' projections and the lm_head (tied or not)."""
    h, f, layers, nq, nkv, d, vocab = _dims(config)
    per_layer = h * nq * d * 2 + h * nkv * d * 2 + 3 * h * f
    return layers * per_layer + vocab * h


def flops_per_token(config: Mapping[str, Any], seq_len: int) -> float:
    """Training FLOPs (forward + backward) per token: 6 N + 12 L n_heads d_head seq_len."""
    _, _, layers, nq, _, d, _ = _dims(config)
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
