"""Grow and merge write the same bytes as before the I/O rework: digests pinned from the code on main at 9c78881.

The pipelined writers (positional writes from worker threads, early writeback, mmap'd merge inputs) must not
change a byte: these digests of the weight files and index were computed with the sequential implementation they
replaced. Sources are written straight from `init_tensor` (no tokenizer), small enough to run in seconds but split
into several shards, and the merge runs with a chunk size that cuts tensors into many chunks and a worker count
above one, so the out-of-order paths are the ones pinned. The digests hold for torch 2.13 on x86-64 (AVX2), what CI
pins: a noise draw in another torch build may differ in its last bits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from growtest import write_plan

from growth.checkpoint import CheckpointWriter, TensorSpec
from growth.fixture import TinySpec, init_tensor, qwen3_config, qwen3_tensor_shapes
from growth.grow import grow
from growth.merge import execute
from growth.merge.execute import plan_merge, run_merge
from growth.merge.recipe import inline_recipe

SPEC = TinySpec(layers=4, hidden=96, ffn=160, heads=3, kv_heads=1, head_dim=32, vocab=320)
CARD_STEPS = ({"op": "untie"}, {"op": "width", "intermediate_size": 400, "snr_db": 10},
              {"op": "depth", "start": 1, "end": 3})
DOUBLE_STEPS = ({"op": "untie"}, {"op": "width", "factor": 2, "snr_db": 10}, {"op": "depth", "start": 1, "end": 3})
PLAIN_STEPS = ({"op": "width", "factor": 2, "snr_db": 7, "noise": "plain"},
               {"op": "depth", "start": 0, "end": 2, "order": "interleave", "init": "identity"})
GROWN = {
    ("float32", "card"): "9f9c749539ddfb5bab66b610",
    ("bfloat16", "card"): "fceadadd2d76c7c19cdc30f3",
    ("float32", "plain"): "1dfaaf66354be45e8c28161d",
    ("bfloat16", "double"): "1a65a241b837ae7758eada12",
}
MERGED = {"float32": "cafb79731adabd96ecd31859", "bfloat16": "cbea786fe459fe0490b918af"}


def source(out: Path, dtype: str, seed: int) -> Path:
    config = qwen3_config(SPEC, eos_id=0, pad_id=0)
    torch_dtype = getattr(torch, dtype)
    specs = [TensorSpec(n, s, torch_dtype) for n, s in qwen3_tensor_shapes(config).items()]
    with CheckpointWriter(out, specs, max_shard_bytes=150_000) as w:
        for s in specs:
            w.add(s.name, init_tensor(s.name, s.shape, seed).to(torch_dtype))
        w.write_config(config)
        return w.commit()


def weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix == ".safetensors" or f.name.endswith(".index.json"):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:24]


@pytest.mark.parametrize(("dtype", "plan"), list(GROWN))
def test_grow_bytes_unchanged(tmp_path: Path, dtype: str, plan: str) -> None:
    steps = {"card": CARD_STEPS, "plain": PLAIN_STEPS, "double": DOUBLE_STEPS}[plan]
    src = source(tmp_path / "src", dtype, seed=0)
    out = grow(src, tmp_path / "out", write_plan(tmp_path / "p.yaml", *steps, seed=3), max_shard_bytes=400_000)
    assert weights_digest(out.path) == GROWN[(dtype, plan)]


@pytest.mark.parametrize("dtype", list(MERGED))
def test_merge_bytes_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    monkeypatch.setattr(execute, "CHUNK_ELEMENTS", 4096)
    monkeypatch.setattr(execute, "BLOCK_ELEMENTS", 1000)
    sources = [source(tmp_path / f"in{i}", dtype, seed=i) for i in range(5)]
    weights = (0.30, 0.25, 0.15, 0.15, 0.15)
    recipe = inline_recipe([f"{p}:{w}" for p, w in zip(sources, weights)], {"normalize": False})
    out = run_merge(plan_merge(recipe), tmp_path / "out", max_shard_bytes=300_000, workers=3)
    assert weights_digest(out) == MERGED[dtype]
