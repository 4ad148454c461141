"""The training loss without the full-vocabulary fp32 logits: a chunked cross-entropy over the final hidden states and
the lm_head, or Liger-Kernel's fused linear cross-entropy on a GPU.

transformers' loss materialises a micro-batch's logits and upcasts them to fp32 before the cross-entropy: bf16 logits,
their fp32 copy, the fp32 log-softmax it saves and its gradient, 14 bytes x vocab per token at the peak, 16.2 GiB at
8192 tokens of Qwen's 151,936-token vocabulary (training.memory_plan). `loss: {impl: chunked}` computes the same mean
next-token cross-entropy `chunk_tokens` tokens at a time: each chunk's logits (compute dtype, upcast to fp32 as
transformers does), their log-sum-exp and, in the same pass, their gradient, which goes at once into the gradients of
the hidden states and the lm_head weight (accumulated in fp32) and is dropped. So only one chunk's logits ever exist,
backward has nothing to recompute (three matmuls over the vocabulary, as without chunking), and the loss and its
gradients equal transformers' to fp32 rounding (tests/training/test_loss.py): 1.92 GiB at the card's scale, of which
1.45 GiB is the lm_head's fp32 gradient. Liger-Kernel's `LigerFusedLinearCrossEntropyLoss` does the same in Triton
kernels (`impl: liger`; CUDA only, `pip install liger-kernel`); `impl: full` keeps transformers' own loss.

The loss lives in the lm_head's forward (`LMHeadLoss`, an nn.Linear with the same weight, so names, tying, state
dicts and exports are unchanged), and the model's forward hands the lm_head the final hidden states and the labels.
One lm_head call per micro-batch keeps FSDP2's view simple: the [final norm, lm_head] unit is gathered once and its
gradient reduce-scattered once.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Any

import torch

from growth.foundation.errors import ConfigError

IMPLS = ("chunked", "liger", "full")
IGNORE = -100


@dataclass
class LossConfig:
    impl: str = "chunked"
    """chunked (any device), liger (Liger-Kernel's fused linear cross-entropy, CUDA only) or full (transformers' loss
    over the micro-batch's full-vocabulary fp32 logits)."""
    chunk_tokens: int = 512
    """Tokens per chunk of the chunked loss: a chunk's logits take (4 + d) x chunk_tokens x vocab bytes (d: the
    compute dtype's bytes), 0.43 GiB at 512 tokens with Qwen's vocabulary in bf16."""

    def __post_init__(self) -> None:
        if self.impl not in IMPLS:
            raise ConfigError(f"loss.impl must be one of {IMPLS}, got {self.impl!r}")
        if self.chunk_tokens < 1:
            raise ConfigError(f"loss.chunk_tokens must be >= 1, got {self.chunk_tokens}")


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """transformers' causal-LM targets: position t predicts token t + 1; each sequence's last position is ignored."""
    return torch.nn.functional.pad(labels[..., 1:], (0, 1), value=IGNORE)


def _accumulate(acc: torch.Tensor, grad: torch.Tensor, hidden: torch.Tensor) -> None:
    """acc (fp32) += grad^T @ hidden, without a weight-sized temporary where the backend allows."""
    if grad.dtype == acc.dtype:
        acc.addmm_(grad.t(), hidden)
    elif acc.is_cuda and torch.cuda.get_device_capability(acc.device)[0] >= 8:
        torch.addmm(acc, grad.t(), hidden, out_dtype=torch.float32, out=acc)
    else:
        acc.add_(grad.t() @ hidden)


class ChunkedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (hidden @ weight.T) against targets, chunk by chunk, gradients computed in forward."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk: int) -> torch.Tensor:
        need_h, need_w = ctx.needs_input_grad[:2]
        valid = targets != IGNORE
        count = valid.sum().clamp(min=1)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        for start in range(0, hidden.shape[0], chunk):
            h, y, keep = hidden[start:start + chunk], targets[start:start + chunk], valid[start:start + chunk]
            logits = (h @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            y = torch.where(keep, y, 0)
            total += ((lse - logits.gather(1, y[:, None]).squeeze(1)) * keep).sum()
            if need_h or need_w:
                probs = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
                probs[torch.arange(len(y), device=y.device), y] -= 1
                grad = probs.mul_((keep / count)[:, None]).to(hidden.dtype)
                del logits, probs
                if need_h:
                    torch.mm(grad, weight, out=grad_h[start:start + chunk])
                if need_w:
                    _accumulate(grad_w, grad, h)
        ctx.grads = grad_h, grad_w
        ctx.weight_dtype = weight.dtype
        return total / count

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.grads
        ctx.grads = None
        if grad_h is not None:
            grad_h = grad_h.mul_(grad_out.to(grad_h.dtype))
        if grad_w is not None:
            grad_w = grad_w.mul_(grad_out).to(ctx.weight_dtype)
        return grad_h, grad_w, None, None


def chunked_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                          chunk_tokens: int) -> torch.Tensor:
    """transformers' causal-LM loss (mean over predicted tokens) without materialising all logits at once."""
    targets = shifted_labels(labels).reshape(-1)
    return ChunkedCrossEntropy.apply(hidden.reshape(-1, hidden.shape[-1]), weight, targets, chunk_tokens)


def liger_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The same loss through Liger-Kernel's fused linear cross-entropy (Triton; CUDA only)."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    targets = shifted_labels(labels).reshape(-1)
    out = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE, reduction="mean")(
        weight, hidden.reshape(-1, hidden.shape[-1]), targets)
    return out[0] if isinstance(out, tuple) else out


class LMHeadLoss(torch.nn.Linear):
    """The lm_head: logits when called with hidden states alone, the mean next-token loss when given labels."""

    def __init__(self, linear: torch.nn.Linear, config: LossConfig) -> None:
        super().__init__(linear.in_features, linear.out_features, bias=False, device="meta")
        self.weight = linear.weight  # the same Parameter: tying, names and state dicts are unchanged
        self.impl, self.chunk_tokens = config.impl, config.chunk_tokens

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            return super().forward(hidden)
        if self.impl == "liger":
            return liger_cross_entropy(hidden, self.weight, labels)
        return chunked_cross_entropy(hidden, self.weight, labels, self.chunk_tokens)


def _causal_lm_forward(self: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                       **kwargs: Any) -> Any:
    """An HF causal LM's forward whose loss is the lm_head's (LMHeadLoss): no logits when labels are given."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    hidden = self.model(input_ids=input_ids, use_cache=False, **kwargs).last_hidden_state
    if labels is None:
        return CausalLMOutputWithPast(logits=self.lm_head(hidden))
    return CausalLMOutputWithPast(loss=self.lm_head(hidden, labels))


def check_loss(config: LossConfig, device: torch.device) -> None:
    """ConfigError when the chosen loss cannot run here (Liger: CUDA and an importable liger_kernel)."""
    if config.impl != "liger":
        return
    if device.type != "cuda":
        raise ConfigError("loss.impl liger runs Triton kernels on CUDA only; use loss.impl chunked on "
                          f"{device.type}")
    try:
        import liger_kernel.transformers  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"loss.impl liger needs liger-kernel (pip install liger-kernel): {e}") from None


def apply_loss(model: torch.nn.Module, config: LossConfig) -> None:
    """Route `model(input_ids=, labels=)` through LMHeadLoss (nothing to do for impl full). On the meta model,
    before fully_shard, so FSDP2 wraps the new lm_head."""
    if config.impl == "full":
        return
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear) or head.bias is not None or not hasattr(model, "model"):
        raise ConfigError(f"{type(model).__name__} has no bias-free lm_head over model.model; set loss.impl: full")
    model.set_output_embeddings(LMHeadLoss(head, config))
    model.forward = types.MethodType(_causal_lm_forward, model)


def loss_transient_bytes(config: LossConfig, tokens: int, hidden: int, vocab: int, d: int, device: str) -> int:
    """Bytes the loss holds at its peak beyond the saved activations, for `tokens` tokens of compute dtype `d`:
    full: transformers' fp32 logits, log-softmax and gradient ((8 + d) x vocab per token, as measured);
    chunked: the fp32 weight-gradient accumulator, the hidden states' gradient and one chunk's fp32 logits (softmax
    and gradient in place; under bf16 also the gradient's bf16 copy) plus, off CUDA under bf16, one bf16
    weight-gradient product;
    liger: its chunks of ~tokens x hidden / vocab tokens and a weight gradient in the weight's dtype."""
    if config.impl == "full":
        return tokens * (8 + d) * vocab
    if config.impl == "liger":
        chunk = min(tokens, 2 ** math.ceil(math.log2(max(1, math.ceil(tokens / math.ceil(vocab / hidden))))))
        return d * vocab * hidden + d * tokens * hidden + chunk * vocab * (d + 4)
    chunk = min(tokens, config.chunk_tokens)
    product = d * vocab * hidden if d < 4 and device != "cuda" else 0
    return 4 * vocab * hidden + d * tokens * hidden + chunk * vocab * (4 + (d if d < 4 else 0)) + product
