"""Parallelism, apart from the training loop (torchtitan's parallelize.py): the process group, the loss head,
activation checkpointing, torch.compile and FSDP2 with mixed precision, applied in that order to a model on the meta
device.

    model = build_meta_model(parent)                     # training.loading
    parallelize(model, resolve(...), device)             # loss head -> AC -> compile -> fully_shard units
    materialize(model, device); load_weights(model, parent)

The loss head (training.loss): the lm_head computes the loss chunk by chunk, so no micro-batch's full-vocabulary fp32
logits exist (`loss: {impl: chunked}`, the default).

Activation checkpointing (`activation_checkpointing: none | full | {every_n: K}`): Hugging Face decoder layers are
`GradientCheckpointingLayer`s; we turn on their `gradient_checkpointing` flag (non-reentrant
torch.utils.checkpoint) for every layer, or every K-th. Unlike torch's `checkpoint_wrapper` this leaves parameter
names unchanged, so optimizer rules, DCP states and exports see the same names with and without it. FSDP2's hooks run
inside the checkpointed call and skip themselves during the backward recompute, which reuses the parameters already
gathered for backward. A checkpointed layer keeps only its input (seq x hidden) and recomputes the rest: about a
third more forward compute for a memory cut of ~30x per layer (numbers in training.memory_plan).

FSDP2 units (torchtitan's): the input embedding, each decoder layer, the final norm with the lm_head, and the root.
The embedding is gathered for its forward and again for its backward only; the last layer and the [norm, lm_head]
unit stay gathered from the end of forward into backward, which needs them at once. Where the lm_head is tied to
the embedding both stay in the root unit (a parameter can belong to one unit only), gathered the whole step.

Mixed precision (`precision: bf16`, the GPU default): FSDP2's MixedPrecisionPolicy(param_dtype=bf16,
reduce_dtype=`reduce_dtype`, fp32 by default). Parameters are all-gathered and used in bf16 (half the traffic of
fp32), gradients are reduce-scattered in fp32 (or in bf16 with `reduce_dtype: bfloat16`, half the traffic), and the
sharded parameters (the master weights), gradients and optimizer states stay fp32. The policy lives in FSDP2, so a
bf16 run of one process is an FSDP2 world of one. fp32 stays the CPU default.

Gradient accumulation (`gradient_sync: every_micro_batch`, the default, torchtitan's choice): every micro-batch's
backward reduce-scatters its gradients and FSDP2 adds them to the sharded fp32 gradients, so a rank holds a shard's
gradients, whatever the number of micro-batches. `last_micro_batch` reduce-scatters once per step (one collective
instead of one per micro-batch) but FSDP2 then keeps every parameter's whole gradient, in the reduce dtype, between
micro-batches: 4 bytes x all parameters per rank (39.5 GiB for the card's model), which the memory planner counts.

`compile: true` compiles each decoder layer in place (`nn.Module.compile`): torchtitan's per-block compile, names kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from growth.foundation.errors import ConfigError
from training.loss import LossConfig, apply_loss

PRECISIONS = ("auto", "fp32", "bf16")
REDUCE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
GRADIENT_SYNCS = ("every_micro_batch", "last_micro_batch")


def parse_activation_checkpointing(value: Any) -> int:
    """none -> 0, full -> 1, {every_n: K} -> K: checkpoint the decoder layers whose index is a multiple of K."""
    if value in (None, "none", False):
        return 0
    if value in ("full", True):
        return 1
    if isinstance(value, dict) and set(value) == {"every_n"} and isinstance(value["every_n"], int) \
            and not isinstance(value["every_n"], bool) and value["every_n"] >= 1:
        return value["every_n"]
    raise ConfigError(f"activation_checkpointing must be none, full or {{every_n: K}} with K >= 1, got {value!r}")


@dataclass(frozen=True)
class Parallelism:
    """What parallelize() applies, resolved for one device."""

    dtype: torch.dtype
    """Compute dtype: bfloat16 (FSDP2 mixed precision) or float32."""
    ac_every: int = 0
    """0: no activation checkpointing; K: checkpoint layers 0, K, 2K, ..."""
    compile: bool = False
    fsdp: bool = False
    """Shard with FSDP2 (more than one process, or bf16, whose policy lives in FSDP2)."""
    reduce_dtype: torch.dtype = torch.float32
    """The dtype gradients are reduce-scattered in."""
    sync_every_micro_batch: bool = True
    """Reduce-scatter each micro-batch's gradients (else only the last one's: whole gradients held in between)."""
    loss: LossConfig = field(default_factory=LossConfig)


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """auto: bf16 on GPU, fp32 on CPU."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def check_choice(name: str, value: str, choices: Any) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def resolve(precision: str, activation_checkpointing: Any, compile: bool, device: torch.device, world: int,
            reduce_dtype: str = "float32", gradient_sync: str = "every_micro_batch",
            loss: LossConfig | None = None) -> Parallelism:
    """The train config's parallelism settings (TrainConfig.parallelism passes them all) for `world` processes on
    `device`."""
    check_choice("reduce_dtype", reduce_dtype, REDUCE_DTYPES)
    check_choice("gradient_sync", gradient_sync, GRADIENT_SYNCS)
    dtype = compute_dtype(precision, device)
    return Parallelism(dtype=dtype, ac_every=parse_activation_checkpointing(activation_checkpointing),
                       compile=compile, fsdp=world > 1 or dtype != torch.float32,
                       reduce_dtype=REDUCE_DTYPES[reduce_dtype],
                       sync_every_micro_batch=gradient_sync == "every_micro_batch", loss=loss or LossConfig())


def setup_distributed(need_group: bool) -> tuple[int, int, torch.device, bool]:
    """(rank, world, device, started_here). Joins torchrun's process group; with `need_group` and no torchrun, makes a
    process group of one (FSDP2 needs one for its mixed-precision policy)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    started = False
    if not dist.is_initialized():
        if world > 1:
            dist.init_process_group(backend)
            started = True
        elif need_group:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
            started = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device, started


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """An HF causal LM's decoder layers (model.model.layers); ConfigError for a model without them."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(f"{type(model).__name__} has no model.layers; growbench trains decoder-only HF models")
    return layers


def apply_activation_checkpointing(model: torch.nn.Module, every: int) -> None:
    """Checkpoint decoder layers 0, every, 2 every, ... (none when `every` is 0)."""
    if every < 1:
        return
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(f"{type(model).__name__} does not support activation checkpointing; "
                          f"set activation_checkpointing: none")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False  # training keeps no KV cache; HF would warn that checkpointing turns it off
    for i, layer in enumerate(decoder_layers(model)):
        layer.gradient_checkpointing = i % every == 0


def apply_compile(model: torch.nn.Module) -> None:
    """torch.compile each decoder layer in place."""
    for layer in decoder_layers(model):
        layer.compile()


def fsdp_units(model: torch.nn.Module) -> tuple[torch.nn.Module | None, list[torch.nn.Module]]:
    """The input embedding and the [final norm, lm_head] group as FSDP2 units of their own, or (None, []) when the
    lm_head is tied to the embedding (then both stay in the root unit)."""
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight is embed.weight:
        return None, []
    norm = getattr(getattr(model, "model", None), "norm", None)
    return embed, [m for m in (norm, head) if m is not None]


def apply_fsdp(model: torch.nn.Module, mesh: Any, plan: Parallelism) -> None:
    """fully_shard the embedding, each decoder layer, [final norm, lm_head], then the root. The last layer and the
    head are not resharded after forward: backward needs them at once (torchtitan does the same)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    low = plan.dtype != torch.float32
    mp = MixedPrecisionPolicy(param_dtype=plan.dtype if low else None,
                              reduce_dtype=plan.reduce_dtype if low or plan.reduce_dtype != torch.float32 else None)
    embed, head = fsdp_units(model)
    if embed is not None:
        fully_shard(embed, mesh=mesh, mp_policy=mp)
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        fully_shard(layer, mesh=mesh, mp_policy=mp, reshard_after_forward=i < len(layers) - 1)
    if head:
        fully_shard(head, mesh=mesh, mp_policy=mp, reshard_after_forward=False)
    fully_shard(model, mesh=mesh, mp_policy=mp)


def parallelize(model: torch.nn.Module, plan: Parallelism, device: torch.device) -> None:
    """Apply the loss head, activation checkpointing, compile and FSDP2 (in torchtitan's order) to a model on the
    meta device."""
    apply_loss(model, plan.loss)
    apply_activation_checkpointing(model, plan.ac_every)
    if plan.compile:
        apply_compile(model)
    if plan.fsdp:
        from torch.distributed.device_mesh import init_device_mesh

        apply_fsdp(model, init_device_mesh(device.type, (dist.get_world_size(),)), plan)
