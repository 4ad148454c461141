"""Sharded loading: build the model on the meta device, shard it, then fill each rank's FSDP2 shards straight from the
safetensors files, so no rank ever holds the whole model.

    model = build_meta_model(parent)            # no memory
    parallelize(model, plan, device)            # training.parallel: fully_shard turns parameters into DTensor shards
    materialize(model, device)                  # allocates this rank's shards only, recomputes rotary buffers
    load_weights(model, parent)                 # reads this rank's rows of every tensor

Why per-rank slice reads rather than rank 0 streaming with set_model_state_dict(broadcast_from_rank0=True): FSDP2
shards every tensor along dim 0, and a block of rows of a row-major tensor is one contiguous byte range, so each rank
reads exactly its 1/world of every tensor (`read_rows`: one positional read per tensor through
`Checkpoint.read_into`, no mmap). The model is read once in
all, by every rank in parallel, with no communication. The broadcast route funnels every byte through rank 0's disk,
and each rank receives every whole tensor to keep its slice: world x the model on the network (3.4 TB for the card's
10.61B model in fp32 on 64 GPUs), and a full tensor in every rank's memory. Peak host memory for loading is one row
block (the largest rank's share of the largest tensor, converted to fp32).

A single fp32 process (no FSDP2) is the same path with world 1: whole tensors, one at a time.
"""

from __future__ import annotations

import logging

import torch

from growth.checkpoint import Checkpoint
from growth.foundation.errors import CheckpointError

log = logging.getLogger(__name__)


def build_meta_model(parent: Checkpoint) -> torch.nn.Module:
    """The HF causal LM for `parent`'s config, on the meta device (fp32 parameters, nothing allocated)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(parent.path))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.train()
    return model


def read_rows(parent: Checkpoint, name: str, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of a tensor: one contiguous byte range of the file, read positionally (no mmap)."""
    info = parent.info(name)
    row_bytes = info.nbytes // info.shape[0]
    buf = torch.empty((stop - start) * row_bytes, dtype=torch.uint8)
    parent.read_into(name, buf, start * row_bytes)
    return buf.view(info.dtype).reshape(stop - start, *info.shape[1:])


def row_range(rows: int, world: int, rank: int) -> tuple[int, int]:
    """The rows FSDP2 gives `rank` (torch.chunk: ceil(rows/world) each, the last ranks may get fewer or none)."""
    chunk = -(-rows // world)
    start = min(rank * chunk, rows)
    return start, min(start + chunk, rows)


def _local(t: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(tensor to fill, first row, last row + 1) of a plain tensor or this rank's FSDP2 shard."""
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(t, DTensor):
        return t.data, 0, t.shape[0] if t.ndim else 1
    if tuple(t.placements) != (Shard(0),):
        raise CheckpointError(f"cannot load a tensor placed as {t.placements}; growbench shards along dim 0 only")
    mesh = t.device_mesh
    start, stop = row_range(t.shape[0], mesh.size(), mesh.get_local_rank())
    local = t.to_local()
    if local.shape[0] != stop - start:
        raise CheckpointError(f"FSDP2 shard of {list(t.shape)} has {local.shape[0]} rows, expected {stop - start}")
    return local, start, stop


def materialize(model: torch.nn.Module, device: torch.device) -> None:
    """Allocate the (sharded) parameters on `device` and recompute non-persistent buffers (rotary frequencies).
    Tied parameters stay tied (to_empty makes new parameter objects for plain tensors; we re-share them)."""
    shared: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        shared.setdefault(id(p), []).append(name)
    model.to_empty(device=device)
    for first, *others in (names for names in shared.values() if len(names) > 1):
        param = model.get_parameter(first)
        for name in others:
            module, _, attr = name.rpartition(".")
            setattr(model.get_submodule(module), attr, param)
    persistent = set(model.state_dict())
    owners = {}
    for name, buf in model.named_buffers():
        if name not in persistent:
            buf.fill_(float("nan"))
            module_name = name.rpartition(".")[0]
            owners[module_name] = model.get_submodule(module_name)
    with torch.no_grad():
        for module in owners.values():
            model._init_weights(module)  # HF's own initialiser recomputes rotary inv_freq from the config
    for name, buf in model.named_buffers():
        if name not in persistent and buf.is_floating_point() and torch.isnan(buf).any():
            raise CheckpointError(f"buffer {name} was not initialised by {type(model).__name__}._init_weights")


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers by checkpoint name, tied parameters once (under their first name)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    persistent = set(model.state_dict())
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if name in persistent and id(t) not in seen:
            seen.add(id(t))
            tensors[name] = t
    return tensors


@torch.no_grad()
def load_weights(model: torch.nn.Module, parent: Checkpoint) -> None:
    """Fill this rank's share of every parameter and persistent buffer from `parent`, one row block at a time."""
    tensors = model_tensors(model)
    for name, t in tensors.items():
        if name not in parent:
            raise CheckpointError(f"{parent.path}: no tensor {name!r}, which {type(model).__name__} needs")
        shape = parent.info(name).shape
        if tuple(shape) != tuple(t.shape):
            raise CheckpointError(f"{parent.path}: {name} is {list(shape)}, the model expects {list(t.shape)}")
        local, start, stop = _local(t)
        if local.ndim == 0:
            local.copy_(parent.read(name))
        elif stop > start:
            local.copy_(read_rows(parent, name, start, stop))
    known = model.state_dict().keys()  # tensors' names, plus tied parameters' second names
    extra = [n for n in parent.names() if n not in known]
    if extra:
        log.warning("%s: %d tensor(s) the model does not use were not loaded, e.g. %s", parent.path, len(extra),
                    extra[0])
