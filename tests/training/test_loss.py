"""The chunked loss: transformers' loss and gradients within fp32 rounding (bf16: its rounding), logits unchanged
without labels, no tensor of tokens x vocab ever allocated, and the settings' errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from growth.fixture import TinySpec, qwen3_config
from growth.foundation.errors import ConfigError
from training.loss import LossConfig, apply_loss, check_loss, chunked_cross_entropy, loss_transient_bytes

VOCAB = 700


def hf_model(dtype: torch.dtype, tied: bool = False) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = qwen3_config(TinySpec(vocab=VOCAB, tied=tied), 0, 0)
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen3", **kwargs), dtype=dtype)


def losses_and_grads(model: torch.nn.Module, ids: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.item(), {name: p.grad.float() for name, p in model.named_parameters()}


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("chunk", [7, 40, 4096])
def test_chunked_loss_equals_transformers_loss_and_gradients(dtype, tol, chunk):
    ref = hf_model(dtype)
    ours = copy.deepcopy(ref)
    apply_loss(ours, LossConfig(chunk_tokens=chunk))
    ids = torch.randint(0, VOCAB, (3, 40), generator=torch.Generator().manual_seed(1))
    ref_loss, ref_grads = losses_and_grads(ref, ids)
    our_loss, our_grads = losses_and_grads(ours, ids)
    assert our_loss == pytest.approx(ref_loss, rel=1e-6 if dtype == torch.float32 else 1e-3)
    worst = max(((our_grads[n] - g).norm() / g.norm()).item() for n, g in ref_grads.items())
    print(f"{dtype} chunk {chunk}: loss {our_loss:.6f} vs {ref_loss:.6f}, worst relative gradient difference {worst:.1e}")
    assert worst <= tol
    assert torch.equal(ours(ids).logits, ref(ids).logits)  # without labels the lm_head gives logits as before


def test_ignored_labels_and_tied_head():
    ref = hf_model(torch.float32, tied=True)
    ours = copy.deepcopy(ref)
    apply_loss(ours, LossConfig(chunk_tokens=16))
    assert ours.lm_head.weight is ours.model.embed_tokens.weight
    ids = torch.randint(0, VOCAB, (2, 30), generator=torch.Generator().manual_seed(2))
    labels = ids.clone()
    labels[0, 5:20] = -100
    a = ref(input_ids=ids, labels=labels).loss
    b = ours(input_ids=ids, labels=labels).loss
    assert b.item() == pytest.approx(a.item(), rel=1e-6)


class LargestAllocation(TorchDispatchMode):
    """The largest tensor any aten op returns while active (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_no_tensor_of_tokens_by_vocab():
    tokens, hidden, chunk = 512, 32, 64
    weight = torch.randn(VOCAB, hidden, requires_grad=True)
    h = torch.randn(1, tokens, hidden, requires_grad=True)
    labels = torch.randint(0, VOCAB, (1, tokens))
    with LargestAllocation() as seen:
        chunked_cross_entropy(h, weight, labels, chunk).backward()
    assert seen.largest <= max(chunk * VOCAB, VOCAB * hidden, tokens * hidden)
    with LargestAllocation() as full:
        torch.nn.functional.cross_entropy((h[0] @ weight.t()).float(), labels[0]).backward()
    assert full.largest == tokens * VOCAB


def test_loss_transient_at_the_card_scale():
    """8192 tokens, hidden 2560, Qwen's 151,936 vocabulary, bf16: transformers' loss holds 11.6 GiB at its peak (plus
    4.6 GiB of saved fp32 log-softmax); the chunked one 1.92 GiB, of which 1.45 GiB is the lm_head's fp32 gradient."""
    full = loss_transient_bytes(LossConfig(impl="full"), 8192, 2560, 151936, 2, "cuda")
    chunked = loss_transient_bytes(LossConfig(), 8192, 2560, 151936, 2, "cuda")
    assert full / 2**30 == pytest.approx(11.6, abs=0.05)
    assert chunked / 2**30 == pytest.approx(1.92, abs=0.01)


def test_loss_settings_errors():
    with pytest.raises(ConfigError, match="loss.impl must be one of"):
        LossConfig(impl="fast")
    with pytest.raises(ConfigError, match="loss.chunk_tokens must be >= 1"):
        LossConfig(chunk_tokens=0)
    with pytest.raises(ConfigError, match="liger runs Triton kernels on CUDA only"):
        check_loss(LossConfig(impl="liger"), torch.device("cpu"))
    check_loss(LossConfig(), torch.device("cpu"))
