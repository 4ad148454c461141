"""Plan and run a merge: check the sources agree, then stream every tensor through the method in flat chunks.

Planning opens every source (headers only), checks that architectures, tensor names and shapes agree (naming the
first mismatch) and resolves the method's parameters, all before a byte of weights is read. Execution reads each
tensor in chunks of CHUNK_ELEMENTS from one source at a time, hands the fp32 chunks to the method, and writes the
result through `CheckpointWriter`, so resident memory is one output tensor plus a few chunks, whatever the number
of models. The output carries `merge.json` (method, sources with fingerprints and weights, the recipe) and is
published atomically.

    plan = plan_merge(load_recipe("recipe.yaml"))
    run_merge(plan, "merged/")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from growth.checkpoint import (DEFAULT_SHARD_BYTES, Checkpoint, CheckpointWriter, TensorInfo, TensorSpec,
                               parse_dtype)
from growth.errors import CheckpointError
from growth.merge.recipe import MergeRecipe

CHUNK_ELEMENTS = 1 << 24  # 64 MiB of fp32 per source chunk
_CONFIG_DTYPE_KEYS = ("torch_dtype", "dtype")


@dataclass
class MergePlan:
    recipe: MergeRecipe
    sources: list[Checkpoint]
    fingerprints: list[str]
    specs: list[TensorSpec]

    @property
    def out_dtype(self) -> torch.dtype:
        return self.specs[0].dtype

    def record(self) -> dict[str, Any]:
        """The merge.json contract: method, sources (path, fingerprint, effective weight), normalize, dtype, recipe."""
        weights = self.recipe.resolved.get("weights", [None] * len(self.sources))
        return {
            "method": self.recipe.method,
            "models": [{"path": str(s.path.absolute()), "fingerprint": f, "weight": w}
                       for s, f, w in zip(self.sources, self.fingerprints, weights)],
            "normalize": self.recipe.params.get("normalize"),
            "dtype": str(self.out_dtype).removeprefix("torch."),
            "recipe": self.recipe.to_dict(),
        }


def _check_compatible(first: Checkpoint, other: Checkpoint) -> None:
    for key in ("model_type", "architectures"):
        if first.config.get(key) != other.config.get(key):
            raise CheckpointError(f"cannot merge: {key} differs: {first.config.get(key)} in {first.path}, "
                                  f"{other.config.get(key)} in {other.path}")
    theirs = set(other.names())
    for name in first.names():
        if name not in theirs:
            raise CheckpointError(f"cannot merge: tensor {name!r} is in {first.path} but not in {other.path}")
        a, b = first.info(name).shape, other.info(name).shape
        if a != b:
            raise CheckpointError(f"cannot merge: tensor {name!r} has shape {list(a)} in {first.path} "
                                  f"but {list(b)} in {other.path}")
    extra = [n for n in other.names() if n not in first]
    if extra:
        raise CheckpointError(f"cannot merge: tensor {extra[0]!r} is in {other.path} but not in {first.path}")


def plan_merge(recipe: MergeRecipe) -> MergePlan:
    """Open and cross-check every source and fix the output layout; reads headers only."""
    sources = [Checkpoint.open(m.path) for m in recipe.models]
    first = sources[0]
    for other in sources[1:]:
        _check_compatible(first, other)
    forced = parse_dtype(recipe.dtype) if recipe.dtype else None
    specs = []
    for name in first.names():
        info = first.info(name)
        if not info.dtype.is_floating_point:
            raise CheckpointError(f"cannot merge: tensor {name!r} in {first.path} is {info.dtype}, not a float")
        specs.append(TensorSpec(name, info.shape, forced or info.dtype))
    if not specs:
        raise CheckpointError(f"cannot merge: {first.path} holds no tensors")
    return MergePlan(recipe, sources, [s.fingerprint() for s in sources], specs)


def read_span(info: TensorInfo, start: int, stop: int) -> torch.Tensor:
    """Elements [start, stop) of a tensor's flat data, as a fresh fp32 tensor (plain reads, no mmap)."""
    item = info.dtype.itemsize
    buf = torch.empty((stop - start) * item, dtype=torch.uint8)
    with open(info.file, "rb") as f:
        f.seek(info.start + start * item)
        got = f.readinto(memoryview(buf.numpy()))
    if got != buf.numel():
        raise CheckpointError(f"{info.file}: truncated while reading {info.name!r}")
    values = buf.view(info.dtype)
    return values if info.dtype == torch.float32 else values.float()


def _chunks(sources: list[Checkpoint], name: str, start: int, stop: int) -> Iterator[torch.Tensor]:
    for src in sources:
        yield read_span(src.info(name), start, stop)


def merge_tensor(plan: MergePlan, spec: TensorSpec) -> torch.Tensor:
    """One output tensor, built chunk by chunk; only this tensor and the chunks in flight are resident."""
    impl = plan.recipe.impl()
    numel = plan.sources[0].info(spec.name).numel
    out = torch.empty(numel, dtype=spec.dtype)
    for start in range(0, numel, CHUNK_ELEMENTS):
        stop = min(start + CHUNK_ELEMENTS, numel)
        out[start:stop] = impl.combine(_chunks(plan.sources, spec.name, start, stop), plan.recipe.resolved)
    return out.view(spec.shape)


def _out_config(plan: MergePlan) -> dict[str, Any]:
    config = dict(plan.sources[0].config)
    if plan.recipe.dtype:
        name = str(plan.out_dtype).removeprefix("torch.")
        keys = [k for k in _CONFIG_DTYPE_KEYS if k in config] or ["dtype"]
        config.update({k: name for k in keys})
    return config


def run_merge(plan: MergePlan, out: str | Path, *, force: bool = False,
              max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> Path:
    """Write the merged checkpoint (weights, config, tokenizer from the first source, merge.json) atomically."""
    with CheckpointWriter(out, plan.specs, max_shard_bytes=max_shard_bytes, force=force) as writer:
        for spec in plan.specs:
            writer.add(spec.name, merge_tensor(plan, spec))
        writer.write_config(_out_config(plan))
        writer.copy_aux_from(plan.sources[0])
        writer.write_json("merge.json", plan.record())
        return writer.commit()
