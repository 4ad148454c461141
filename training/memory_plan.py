"""Memory planner: what one rank holds at its peak, component by component, for a train config on N devices, computed
from the model's config alone, so a run that cannot fit is known before the cluster is rented.

    growbench train --config training/configs/openseek-mid-v1.yaml --plan-memory --gpus 64,128,256 --gpu-memory 80GiB

`growbench train` runs the same plan before loading weights and refuses (exit 2, naming the setting to change) a run
that does not fit the device (the GPU's memory, or on CPU the host's memory shared by its processes, or the config's
`device_memory`). Bytes per rank, for the largest rank (FSDP2 gives each rank ceil(rows/N) rows of every tensor):

  parameters    4 B per local element (fp32 master weights; the whole model when one fp32 process runs unsharded)
  gradients     4 B per local element (fp32 shards; from the first micro-batch's backward to the optimizer step)
  Muon state    4 B per local element of the Muon matrices (momentum); AdamW state: 8 B for the rest (two moments)
  activations   per micro-batch of T = micro_batch x seq_len tokens, compute dtype of d bytes (2 bf16, 4 fp32), as
                measured with saved-tensor hooks on HF's Qwen3 layers (tests/training/test_memory_plan.py re-measures):
                  a layer, per token: h(8 + 4d) + f(4d) + (q + kv)(4 + 3d) + 8 n_q + 4 n_kv + 8
                  (h hidden, f ffn, q = n_q d_head, kv = n_kv d_head; the 8s and 4s are RMSNorm's fp32 copies)
                  a checkpointed layer keeps only its input: d h per token
                  outside the layers: h(4 + d) + 12 per token (final norm, token ids); transformers' own loss
                  (loss.impl full) also keeps the lm_head input and the fp32 log-softmax: + d h + 4V (V vocab)
                plus one layer's backward working set (two layers' worth when recomputing)
  loss          training.loss.loss_transient_bytes: chunked, the fp32 lm_head-gradient accumulator (4 V h), the
                hidden states' gradient and one chunk's logits; full, (8 + d) V per token of fp32 logits
  gathered      FSDP2's unsharded parameters in the compute dtype (training.parallel's units): the embedding while
                it is all-gathered (output and per-parameter copy at once) and again in its backward; the last layer
                and [final norm, lm_head] from the end of forward into backward; in backward a layer's parameters
                plus the prefetched next one, its unsharded gradients and their reduce-scatter input (r bytes, the
                reduce dtype) and output (r/N). A tied lm_head keeps both in the root unit, gathered the whole step.
  accumulation  gradient_sync every_micro_batch (default): the sharded gradients, already counted.
                gradient_sync last_micro_batch: every parameter's whole gradient in the reduce dtype between
                micro-batches (r B per element of the model: FSDP2's unsharded_accumulated_grad).
  optimizer     the step's transient: Newton-Schulz on the largest matrix (its input, two iterates and two Gram
                matrices, fp32 copies), or AdamW's foreach temporaries
  HF export     the largest tensor gathered whole (and converted) while an export streams it to disk
  async save    checkpoint.async_save: a host copy of the rank's parameters and optimizer states until the write is
                done (host memory: counted on CPU, listed but not added on a GPU)
  runtime       a GPU's CUDA context and NCCL/cuBLAS workspaces (1.5 GiB, an estimate); on CPU the process itself
                (Python, torch, transformers, the tokenizer: 0.55 GiB measured)

peak = parameters + optimizer states + the largest phase: the embedding's all-gather, the loss (saved activations,
head and last layer gathered, the loss transient), the head's backward (its gradient and reduce-scatter), a layer's
backward (saved activations, working set, a layer's gather), the end of backward (all gradient shards, the
embedding's gradient and reduce-scatter), the optimizer
step (gradients + its transient) and an HF export; every phase after the first micro-batch adds the gradients held
between micro-batches; total = peak + runtime. Measured against this on CPU (2 processes, gloo, 4 micro-batches per
rank): the 1.1 GB done-when model (README; python -m bench.train_memory) and a 1.09 GB model with a 102,400-token
vocabulary (tests/training/test_memory_plan.py).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch

from growth.foundation.errors import ConfigError
from growth.foundation.units import GiB, gib, parse_bytes
from training.loss import loss_transient_bytes
from training.parallel import compute_dtype, parse_activation_checkpointing
from training.throughput import model_dims

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.param_groups import OptimizerConfig

HOST_RUNTIME = int(0.55 * GiB)
GPU_RUNTIME = int(1.5 * GiB)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes one rank holds, by component, and the peak they add up to (see the module docstring)."""

    world: int
    device: str
    """cuda or cpu."""
    dtype: str
    ac_every: int
    accumulation: int
    """Micro-batches per rank and step."""
    gradient_sync: str
    loss_impl: str
    parameters: int
    gradients: int
    muon_state: int
    adamw_state: int
    activations: int
    """Saved activations and a layer's backward working set, with the config's activation checkpointing."""
    activations_none: int
    activations_full: int
    loss: int
    all_gather: int
    """The most FSDP2 holds gathered at once (any phase)."""
    accumulated: int
    """Whole gradients held between micro-batches (gradient_sync last_micro_batch)."""
    optimizer: int
    export: int
    """Gathering the largest tensor whole for an HF export (while gradients are freed)."""
    async_save: int
    """Host copy of the rank's state while an async checkpoint is written."""
    runtime: int
    peak: int
    """Without runtime."""
    peak_phase: str
    """When the peak happens (see the module docstring)."""
    budget: int | None = None

    @property
    def total(self) -> int:
        return self.peak + self.runtime

    @property
    def fits(self) -> bool:
        return self.budget is None or self.total <= self.budget

    def components(self) -> list[tuple[str, int]]:
        """What the run itself holds (activations as configured)."""
        return [("parameters", self.parameters), ("gradients", self.gradients), ("Muon state", self.muon_state),
                ("AdamW state", self.adamw_state), ("activations", self.activations), ("loss", self.loss),
                ("all-gather buffers", self.all_gather), ("whole gradients between micro-batches", self.accumulated),
                ("optimizer step transient", self.optimizer), ("HF export", self.export)]

    def rows(self) -> list[tuple[str, int]]:
        """The --plan-memory table's rows: every component, activations under each setting, and the total."""
        host = " (host)" if self.device == "cuda" else ""
        return [("parameters (fp32 shards)", self.parameters), ("gradients (fp32 shards)", self.gradients),
                ("Muon state (momentum)", self.muon_state), ("AdamW state (2 moments)", self.adamw_state),
                ("activations, no checkpointing", self.activations_none),
                ("activations, full checkpointing", self.activations_full),
                (f"activations as configured ({_ac_name(self.ac_every)})", self.activations),
                (f"loss ({self.loss_impl})", self.loss),
                ("all-gather buffers (FSDP2)", self.all_gather),
                (f"whole gradients between micro-batches ({self.gradient_sync})", self.accumulated),
                ("optimizer step transient", self.optimizer), ("HF export (one whole tensor)", self.export),
                (f"async checkpoint copy{host}", self.async_save),
                ("runtime (CUDA context / process)" if self.device == "cuda" else "runtime (process)", self.runtime),
                ("total (peak)", self.total)]


def _ac_name(every: int) -> str:
    return {0: "none", 1: "full"}.get(every, f"every_n {every}")


def layer_activation_bytes(config: Mapping[str, Any], d: int) -> int:
    """Saved activations of one decoder layer per token, for compute dtype of `d` bytes."""
    h, f, _, nq, nkv, hd, _ = model_dims(config)
    return h * (8 + 4 * d) + f * 4 * d + (nq + nkv) * hd * (4 + 3 * d) + 8 * nq + 4 * nkv + 8


def outer_activation_bytes(config: Mapping[str, Any], d: int, loss_impl: str = "chunked") -> int:
    """Saved activations outside the decoder layers per token: the final norm's and the token ids; transformers' loss
    also keeps the lm_head's input and the fp32 log-softmax."""
    dims = model_dims(config)
    outer = dims.hidden * (4 + d) + 12
    return outer + dims.hidden * d + 4 * dims.vocab if loss_impl == "full" else outer


def activation_bytes(config: Mapping[str, Any], tokens: int, d: int, ac_every: int,
                     loss_impl: str = "chunked") -> tuple[int, int]:
    """(saved activations, one layer's backward working set) of one micro-batch of `tokens` tokens."""
    dims = model_dims(config)
    layer = layer_activation_bytes(config, d)
    checkpointed = 0 if ac_every == 0 else math.ceil(dims.layers / ac_every)
    saved = checkpointed * d * dims.hidden + (dims.layers - checkpointed) * layer
    saved += outer_activation_bytes(config, d, loss_impl)
    return tokens * saved, tokens * (2 if checkpointed else 1) * layer


@functools.lru_cache(maxsize=8)
def _shapes(config_json: str) -> dict[str, tuple[int, ...]]:
    from growth.accounting import meta_tensors

    return {name: shape for name, (shape, _) in meta_tensors(json.loads(config_json)).items()}


def parameter_shapes(config: Mapping[str, Any],
                     optimizer: OptimizerConfig) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """Parameter shapes transformers builds for `config` (on the meta device), and the names Muon trains."""
    from training.param_groups import partition

    tensors = _shapes(json.dumps(config, sort_keys=True))
    named = [(name, torch.empty(shape, device="meta")) for name, shape in tensors.items()]
    muon: set[str] = set()
    if optimizer.muon:
        for rule, names in partition(named, optimizer.rules):
            if rule.optimizer == "muon":
                muon.update(names)
    return tensors, muon


def muon_shapes(config: Mapping[str, Any], optimizer: OptimizerConfig) -> list[tuple[int, ...]]:
    """Shapes of the matrices Muon trains (for distributed Muon's communication figures)."""
    tensors, muon = parameter_shapes(config, optimizer)
    return [tensors[name] for name in muon]


def _units(tensors: Mapping[str, tuple[int, ...]]) -> dict[str, str]:
    """Each parameter's FSDP2 unit (training.parallel.apply_fsdp): a decoder layer, embed, head or root."""
    tied = "lm_head.weight" not in tensors
    out = {}
    for name in tensors:
        layer = re.match(r"(.*\.layers\.\d+)\.", name)
        if layer:
            out[name] = layer.group(1)
        elif not tied and name.endswith("embed_tokens.weight"):
            out[name] = "embed"
        elif not tied and (name == "lm_head.weight" or name.endswith("model.norm.weight")):
            out[name] = "head"
        else:
            out[name] = "root"
    return out


def plan_memory(model_config: Mapping[str, Any], train: TrainConfig, world: int, device: str,
                budget: int | None = None) -> MemoryPlan:
    """The per-rank memory plan of `train` on `world` processes of `device` (cuda or cpu) for a model config."""
    tensors, muon_names = parameter_shapes(model_config, train.optimizer)
    par = train.parallelism(device, world)
    d, fsdp, loss_cfg = par.dtype.itemsize, par.fsdp, par.loss
    r = par.reduce_dtype.itemsize if fsdp else 4
    n = world if fsdp else 1
    accum = train.global_batch // world // train.micro_batch
    dims = model_dims(model_config)

    def local(shape: tuple[int, ...]) -> int:
        rows = shape[0] if shape else 1
        return math.ceil(rows / n) * math.prod(shape[1:])

    unit_of = _units(tensors)
    whole: dict[str, int] = {}  # unsharded element counts per unit
    for name, shape in tensors.items():
        whole[unit_of[name]] = whole.get(unit_of[name], 0) + math.prod(shape)
    embed, head, root = whole.get("embed", 0), whole.get("head", 0), whole.get("root", 0)
    layer = max((v for k, v in whole.items() if k not in ("embed", "head", "root")), default=0)
    n_params = sum(local(s) for s in tensors.values())  # element counts on this rank
    n_muon = sum(local(s) for name, s in tensors.items() if name in muon_names)

    tokens = train.micro_batch * train.seq_len
    acts = {k: activation_bytes(model_config, tokens, d, k, loss_cfg.impl) for k in (0, 1, par.ac_every)}
    saved, working = acts[par.ac_every]
    loss = loss_transient_bytes(loss_cfg, tokens, dims.hidden, dims.vocab, d, device)
    ns = train.optimizer.newton_schulz_dtype(device).itemsize
    largest = max((tensors[name] for name in muon_names), key=math.prod, default=(0, 0))
    big, short = math.prod(largest), min(largest)
    # bytes from here on
    parameters, grads = 4 * n_params, 4 * n_params
    states = 4 * n_muon + 8 * (n_params - n_muon)
    optimizer = max(8 * big + (3 * big + 2 * short * short) * ns, 8 * (n_params - n_muon))
    export = 2 * 4 * max(math.prod(s) for s in tensors.values())
    every = par.sync_every_micro_batch or not fsdp
    accumulated = 0 if every or accum == 1 else r * sum(math.prod(s) for s in tensors.values())
    held = (grads if every else accumulated) if accum > 1 else 0
    staged = parameters + states if train.checkpoint.async_save else 0
    if fsdp:
        always = d * root  # a tied root (embedding = lm_head) stays gathered from its forward to the end of backward
        first = "embed" if embed else "root"  # the first unit forward gathers: output and per-parameter copy at once
        first_gather = 2 * d * whole.get(first, 0) + d * sum(local(s) for k, s in tensors.items()
                                                            if unit_of[k] == first)
        rs = r + r / n  # per element of a unit's gradient: its reduce-scatter input and output
        at_loss = d * (head + layer)  # [norm, lm_head] and the last layer, not resharded after forward
        # the head's backward: its parameters, the loss's fp32 gradient and its d-byte copy, then the reduce-scatter
        at_head = d * layer + head * (d + max(4 + d, d + rs)) + d * tokens * dims.hidden
        in_backward = int(layer * (3 * d + rs))  # a layer and the prefetched next, its gradient, the reduce-scatter
        at_end = int(max(embed * (2 * d + rs) if embed else root * (d + rs), in_backward))
        phases = {"embedding all-gather": first_gather + held,
                  "loss": always + saved + at_loss + loss + held,
                  "layer backward": always + saved + working + in_backward + held,
                  "end of backward": always + max(grads, held) + at_end}
        if head:
            phases["head backward"] = int(saved + at_head + held)
        all_gather = max(first_gather, always + max(at_loss, in_backward, at_end))
    else:
        phases = {"loss": saved + loss + held, "layer backward": saved + working + held,
                  "end of backward": max(grads, held)}
        all_gather = 0
    phases["optimizer step"] = grads + optimizer
    phases["HF export"] = export
    phase = max(phases, key=phases.get)
    host_staged = staged if device != "cuda" else 0
    return MemoryPlan(world=world, device=device, dtype=str(par.dtype).removeprefix("torch."), ac_every=par.ac_every,
                      accumulation=accum, gradient_sync=train.gradient_sync if fsdp else "every_micro_batch",
                      loss_impl=loss_cfg.impl, parameters=parameters, gradients=grads, muon_state=4 * n_muon,
                      adamw_state=8 * (n_params - n_muon), activations=saved + working,
                      activations_none=sum(acts[0]), activations_full=sum(acts[1]), loss=loss,
                      all_gather=all_gather, accumulated=accumulated, optimizer=optimizer, export=export,
                      async_save=staged, runtime=GPU_RUNTIME if device == "cuda" else HOST_RUNTIME,
                      peak=parameters + states + phases[phase] + host_staged, peak_phase=phase, budget=budget)


def advice(model_config: Mapping[str, Any], train: TrainConfig, world: int, device: str, budget: int) -> str:
    """The first setting whose change makes the run fit, as one clause."""
    def fits(t: TrainConfig, w: int = world) -> MemoryPlan:
        return plan_memory(model_config, t, w, device, budget)

    if parse_activation_checkpointing(train.activation_checkpointing) != 1:
        p = fits(dataclasses.replace(train, activation_checkpointing="full"))
        if p.fits:
            return f"set activation_checkpointing: full (then {gib(p.total)})"
    if device == "cuda" and compute_dtype(train.precision, torch.device(device)) == torch.float32:
        p = fits(dataclasses.replace(train, precision="bf16"))
        if p.fits:
            return f"set precision: bf16 (then {gib(p.total)})"
    for mb in range(train.micro_batch - 1, 0, -1):
        if train.global_batch % mb == 0:
            p = fits(dataclasses.replace(train, micro_batch=mb))
            if p.fits:
                return f"lower micro_batch to {mb} (then {gib(p.total)})"
    w = world
    while w < 2**16:
        w *= 2
        p = fits(train, w)
        if p.fits:
            return f"run on {w} or more processes (then {gib(p.total)} each)"
    return "lower seq_len"


def check_fits(model_config: Mapping[str, Any], train: TrainConfig, world: int, device: str,
               budget: int) -> MemoryPlan:
    """The plan; ConfigError (one line, naming the setting to change) when it does not fit `budget`."""
    plan = plan_memory(model_config, train, world, device, budget)
    if not plan.fits:
        largest = max(plan.components(), key=lambda r: r[1])
        raise ConfigError(f"the memory planner predicts {gib(plan.total)} per {'GPU' if device == 'cuda' else 'process'}"
                          f", more than the {gib(budget)} available (largest part: {largest[0]} {gib(largest[1])}); "
                          f"{advice(model_config, train, world, device, budget)}")
    return plan


def device_budget(device: torch.device, setting: str | None) -> int:
    """The memory one process may use: the config's `device_memory`, else the GPU's, else the host's share."""
    if setting:
        return parse_bytes(setting)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // local
