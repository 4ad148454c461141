"""Plan and run a merge: check the sources agree, then stream every tensor through the method in flat chunks.

Planning opens every source (headers only), checks that architectures, tensor names and shapes agree (naming
the first mismatch) and resolves the method's parameters, all before a byte of weights is read. Execution
reads each tensor in chunks of CHUNK_ELEMENTS from one source at a time, hands the fp32 chunks to the method,
and writes the result through `CheckpointWriter`, so resident memory is one output tensor plus a few chunks,
whatever the number of models. The output carries `merge.json` (method, sources with fingerprints and weights,
the recipe) and is published atomically.

    plan = plan_merge(load_recipe("recipe.yaml"))
    run_merge(plan, "merged/")
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from growth.checkpoint import (
    DEFAULT_SHARD_BYTES,
    Checkpoint,
    CheckpointWriter,
    TensorInfo,
    TensorSpec,
    parse_dtype,
)
from growth.dtype import with_dtype
from growth.foundation.errors import CheckpointError
from growth.merge.recipe import MergeRecipe

CHUNK_ELEMENTS = 1 << 24  # 64 MiB of fp32 per source chunk
PIPELINE_BYTES = 2**30  # compute the next tensor during a write only while both fit in this


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
        """merge.json: method, sources (path, fingerprint, effective weight), normalize, dtype, recipe."""
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
            raise CheckpointError(f"cannot merge: tensor {name!r} in {first.path} is {info.dtype}, "
                                  "not a float")
        specs.append(TensorSpec(name, info.shape, forced or info.dtype))
    if not specs:
        raise CheckpointError(f"cannot merge: {first.path} holds no tensors")
    return MergePlan(recipe, sources, [s.fingerprint() for s in sources], specs)


class ChunkReader:
    """Reads flat element ranges of tensors into one reused buffer (plain reads, no mmap).

    Reusing the buffer matters: a fresh 64 MiB allocation per read costs a page fault per 4 KiB on first
    touch, which made reading three times slower than the page cache can deliver. Each read overwrites the
    last one.
    """

    def __init__(self, elements: int) -> None:
        # room for float64; pages never touched cost no memory
        self._raw = torch.empty(elements * 8, dtype=torch.uint8)
        self._f32 = torch.empty(elements, dtype=torch.float32)

    def read(self, info: TensorInfo, start: int, stop: int) -> torch.Tensor:
        """Elements [start, stop) of the tensor as fp32, valid until the next read."""
        item = info.dtype.itemsize
        raw = self._raw[: (stop - start) * item]
        with open(info.file, "rb", buffering=0) as f:
            f.seek(info.start + start * item)
            got = f.readinto(memoryview(raw.numpy()))
        if got != raw.numel():
            raise CheckpointError(f"{info.file}: truncated while reading {info.name!r}")
        values = raw.view(info.dtype)
        if info.dtype == torch.float32:
            return values
        return self._f32[: stop - start].copy_(values)


def merge_tensor(plan: MergePlan, spec: TensorSpec, reader: ChunkReader, acc: torch.Tensor) -> torch.Tensor:
    """One output tensor, built chunk by chunk; fp32 outputs accumulate in place, others through `acc`."""
    impl = plan.recipe.impl()
    infos = [src.info(spec.name) for src in plan.sources]
    numel = infos[0].numel
    out = torch.empty(numel, dtype=spec.dtype)
    for start in range(0, numel, CHUNK_ELEMENTS):
        stop = min(start + CHUNK_ELEMENTS, numel)
        target = out[start:stop] if spec.dtype == torch.float32 else acc[: stop - start]
        impl.combine((reader.read(info, start, stop) for info in infos), plan.recipe.resolved, target)
        if spec.dtype != torch.float32:
            out[start:stop].copy_(target)
    return out.view(spec.shape)


def _out_config(plan: MergePlan) -> dict[str, Any]:
    config = plan.sources[0].config
    return with_dtype(config, plan.out_dtype) if plan.recipe.dtype else dict(config)


def run_merge(plan: MergePlan, out: str | Path, *, force: bool = False,
              max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> Path:
    """Write the merged checkpoint (weights, config, tokenizer from the first source, merge.json) atomically.

    One worker thread computes the next tensor while this thread writes the current one (reads, adds and
    writes all release the GIL), as long as the two together fit in PIPELINE_BYTES; otherwise they take turns,
    so peak memory stays bounded whatever the largest tensor. The worker runs torch single-threaded: the adds
    are memory-bound, and intra-op threads only added spin-waiting (measured: half the CPU time, half the wall
    time on two loaded cores).
    """
    specs = plan.specs
    threads = torch.get_num_threads()
    try:
        with CheckpointWriter(out, specs, max_shard_bytes=max_shard_bytes, force=force) as writer, \
                ThreadPoolExecutor(max_workers=1, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            reader, acc = ChunkReader(CHUNK_ELEMENTS), torch.empty(CHUNK_ELEMENTS, dtype=torch.float32)
            pending = pool.submit(merge_tensor, plan, specs[0], reader, acc)
            for i, spec in enumerate(specs):
                tensor = pending.result()
                following = specs[i + 1] if i + 1 < len(specs) else None
                overlap = following is not None and spec.nbytes + following.nbytes <= PIPELINE_BYTES
                if overlap:
                    pending = pool.submit(merge_tensor, plan, following, reader, acc)
                writer.add(spec.name, tensor)
                del tensor
                if following is not None and not overlap:
                    pending = pool.submit(merge_tensor, plan, following, reader, acc)
            writer.write_config(_out_config(plan))
            writer.copy_aux_from(plan.sources[0])
            writer.write_json("merge.json", plan.record())
            return writer.commit()
    finally:
        torch.set_num_threads(threads)  # the worker's setting also reaches process-wide pools; put them back
