"""Memory planner: what one rank holds at its peak, component by component, for a train config on N devices, computed
from the model's config alone, so a run that cannot fit is known before the cluster is rented.

    growbench train --config training/configs/openseek-mid-v1.yaml --plan-memory --gpus 64,128,256 --gpu-memory 80GiB

`growbench train` runs the same plan before loading weights and refuses (exit 2, naming the setting to change) a run
that does not fit the device (the GPU's memory, or on CPU the host's memory shared by its processes, or the config's
`device_memory`). Bytes per rank, for the largest rank (FSDP2 gives each rank ceil(rows/N) rows of every tensor):

  parameters    4 B per local element (fp32 master weights; the whole model when one fp32 process runs unsharded)
  gradients     4 B per local element (fp32: reduced in fp32 under bf16 mixed precision)
  Muon state    4 B per local element of the Muon matrices (momentum); AdamW state: 8 B for the rest (two moments)
  activations   per micro-batch of T = micro_batch x seq_len tokens, compute dtype of d bytes (2 bf16, 4 fp32), as
                measured with saved-tensor hooks on HF's Qwen3 layers (tests/training/test_memory_plan.py re-measures):
                  a layer, per token: h(8 + 4d) + f(4d) + (q + kv)(4 + 3d) + 8 n_q + 4 n_kv + 8
                  (h hidden, f ffn, q = n_q d_head, kv = n_kv d_head; the 8s and 4s are RMSNorm's fp32 copies)
                  a checkpointed layer keeps only its input: d h per token
                  outside the layers: h(4 + 2d) + 4V per token (V vocab: the fp32 log-softmax the loss keeps)
                peak = saved activations + the larger of the loss's transient ((8 + d)V per token: fp32 logits and
                their gradient) and one layer's backward working set (two layers' worth when recomputing)
  all-gather    FSDP2's unsharded parameters in the compute dtype: the root's (embeddings, lm_head, final norm; kept
                through the step) and, in backward, a layer's parameters plus the prefetched next one, its unsharded
                gradients and their fp32 reduce-scatter copy. The root's all-gather briefly holds its output twice
                (the flat buffer and the per-parameter copy), and at the end of backward the root holds its
                parameters, gradients and their reduce-scatter copy at once: both are phases of their own.
  optimizer     the step's transient: Newton-Schulz on the largest matrix (its input, two iterates and two Gram
                matrices, fp32 copies), or AdamW's foreach temporaries
  HF export     the largest tensor gathered whole (and converted) while an export streams it to disk
  runtime       a GPU's CUDA context and NCCL/cuBLAS workspaces (1.5 GiB, an estimate); on CPU the process itself
                (Python, torch, transformers, the tokenizer: 0.55 GiB measured)

peak = parameters + optimizer states + the largest phase: forward/backward (activations + all-gather, plus the
gradients when micro-batches accumulate), the root's all-gather, the end of backward, the optimizer step (gradients +
its transient) and an HF export; total = peak + runtime. Measured against this on CPU (2 processes, gloo): the 1.1 GB
done-when model (README) and a 1.09 GB model with a 102,400-token vocabulary (tests/training/test_memory_plan.py).
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
from training.parallel import compute_dtype, parse_activation_checkpointing, resolve
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
    parameters: int
    gradients: int
    muon_state: int
    adamw_state: int
    activations: int
    """With the config's activation checkpointing."""
    activations_none: int
    activations_full: int
    all_gather: int
    optimizer: int
    export: int
    """Gathering the largest tensor whole for an HF export (while gradients are freed)."""
    runtime: int
    peak: int
    """Without runtime."""
    peak_phase: str
    """When the peak happens: forward/backward, root all-gather, end of backward, optimizer step or HF export."""
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
                ("AdamW state", self.adamw_state), ("activations", self.activations),
                ("all-gather buffers", self.all_gather), ("optimizer step transient", self.optimizer),
                ("HF export", self.export)]

    def rows(self) -> list[tuple[str, int]]:
        """The --plan-memory table's rows: every component, activations under each setting, and the total."""
        return [("parameters (fp32 shards)", self.parameters), ("gradients (fp32 shards)", self.gradients),
                ("Muon state (momentum)", self.muon_state), ("AdamW state (2 moments)", self.adamw_state),
                ("activations, no checkpointing", self.activations_none),
                ("activations, full checkpointing", self.activations_full),
                (f"activations as configured ({_ac_name(self.ac_every)})", self.activations),
                ("all-gather buffers (FSDP2)", self.all_gather), ("optimizer step transient", self.optimizer),
                ("HF export (one whole tensor)", self.export),
                ("runtime (CUDA context / process)" if self.device == "cuda" else "runtime (process)", self.runtime),
                ("total (peak)", self.total)]


def _ac_name(every: int) -> str:
    return {0: "none", 1: "full"}.get(every, f"every_n {every}")


def layer_activation_bytes(config: Mapping[str, Any], d: int) -> int:
    """Saved activations of one decoder layer per token, for compute dtype of `d` bytes."""
    h, f, _, nq, nkv, hd, _ = model_dims(config)
    return h * (8 + 4 * d) + f * 4 * d + (nq + nkv) * hd * (4 + 3 * d) + 8 * nq + 4 * nkv + 8


def outer_activation_bytes(config: Mapping[str, Any], d: int) -> int:
    """Saved activations outside the decoder layers per token (embedding output, final norm, the loss's fp32)."""
    dims = model_dims(config)
    return dims.hidden * (4 + 2 * d) + 4 * dims.vocab


def activation_bytes(config: Mapping[str, Any], tokens: int, d: int, ac_every: int) -> int:
    """Peak activation memory of one micro-batch of `tokens` tokens."""
    dims = model_dims(config)
    layer = layer_activation_bytes(config, d)
    checkpointed = 0 if ac_every == 0 else math.ceil(dims.layers / ac_every)
    saved = checkpointed * d * dims.hidden + (dims.layers - checkpointed) * layer
    saved += outer_activation_bytes(config, d)
    loss = (8 + d) * dims.vocab
    working = (2 if checkpointed else 1) * layer
    return tokens * (saved + max(loss, working))


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


def plan_memory(model_config: Mapping[str, Any], train: TrainConfig, world: int, device: str,
                budget: int | None = None) -> MemoryPlan:
    """The per-rank memory plan of `train` on `world` processes of `device` (cuda or cpu) for a model config."""
    tensors, muon_names = parameter_shapes(model_config, train.optimizer)
    parallelism = resolve(train.precision, train.activation_checkpointing, train.compile, torch.device(device), world)
    dtype, ac_every, fsdp = parallelism.dtype, parallelism.ac_every, parallelism.fsdp
    d = dtype.itemsize
    n = world if fsdp else 1

    def local(shape: tuple[int, ...]) -> int:
        rows = shape[0] if shape else 1
        return math.ceil(rows / n) * math.prod(shape[1:])

    is_root = {name: not re.match(r".*\.layers\.\d+\.", name) for name in tensors}
    n_params = sum(local(s) for s in tensors.values())  # element counts on this rank
    n_muon = sum(local(s) for name, s in tensors.items() if name in muon_names)
    n_root_shard = sum(local(s) for name, s in tensors.items() if is_root[name])
    layer_params: dict[str, int] = {}
    for name, s in tensors.items():
        if not is_root[name]:
            key = re.match(r"(.*\.layers\.\d+)\.", name).group(1)
            layer_params[key] = layer_params.get(key, 0) + math.prod(s)
    layer = max(layer_params.values(), default=0)  # unsharded element counts
    root = sum(math.prod(s) for name, s in tensors.items() if is_root[name])

    tokens = train.micro_batch * train.seq_len
    acts = {k: activation_bytes(model_config, tokens, d, k) for k in (0, 1, ac_every)}
    ns = train.optimizer.newton_schulz_dtype(device).itemsize
    largest = max((tensors[name] for name in muon_names), key=math.prod, default=(0, 0))
    big, short = math.prod(largest), min(largest)
    # bytes from here on
    parameters, grads = 4 * n_params, 4 * n_params
    states = 4 * n_muon + 8 * (n_params - n_muon)
    all_gather = root * d + layer * (3 * d + 4) if fsdp else 0
    optimizer = max(8 * big + (3 * big + 2 * short * short) * ns, 8 * (n_params - n_muon))
    export = 2 * 4 * max(math.prod(s) for s in tensors.values())
    held = grads if train.global_batch // world // train.micro_batch > 1 else 0  # accumulating micro-batches
    phases = {"forward/backward": acts[ac_every] + all_gather + held, "optimizer step": grads + optimizer,
              "HF export": export, "end of backward": grads}
    if fsdp:
        phases["root all-gather"] = 2 * root * d + n_root_shard * d + held
        phases["end of backward"] = max(grads - 4 * n_root_shard + root * (2 * d + 4), grads + layer * (3 * d + 4))
    phase = max(phases, key=phases.get)
    return MemoryPlan(world=world, device=device, dtype=str(dtype).removeprefix("torch."), ac_every=ac_every,
                      parameters=parameters, gradients=grads, muon_state=4 * n_muon,
                      adamw_state=8 * (n_params - n_muon), activations=acts[ac_every], activations_none=acts[0],
                      activations_full=acts[1], all_gather=all_gather, optimizer=optimizer, export=export,
                      runtime=GPU_RUNTIME if device == "cuda" else HOST_RUNTIME,
                      peak=parameters + states + phases[phase], peak_phase=phase, budget=budget)


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
