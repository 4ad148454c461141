"""Merge 5 synthetic checkpoints of >= 1 GiB each with growbench and with mergekit (else a numpy baseline).

    .venv/bin/python -m bench.merge [--models 5] [--gib 1.0] [--dtype float32] [--work /tmp/growbench-bench-merge]

Prints one table: wall time, peak RSS and max-abs difference of each side, and the ratios against the targets
(growbench >= 2x faster than the baseline, growbench peak RSS <= 2 GiB whatever the number of inputs). Each
side runs as its own child process, launched the same way a user would (`growbench merge`, `mergekit-yaml`),
and its peak RSS comes from os.wait4 on that child. Inputs are read before every run so each starts from a
warm page cache; sides alternate (--repeat times) and the fastest run of each counts, which damps load from
other processes. mergekit comes from its own venv (bench/setup_mergekit.sh, or $GROWBENCH_MERGEKIT); without
it the baseline is numpy: load every state dict whole, weighted sum, save.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec, parse_dtype
from growth.fixture import TinySpec, qwen3_config, qwen3_tensor_shapes
from growth.merge.mergekit import find_mergekit, mergekit_yaml
from growth.merge.recipe import inline_recipe

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
NUMPY_BASELINE = """
import sys, numpy as np
from safetensors.numpy import load_file, save_file
out, pairs = sys.argv[1], sys.argv[2:]
states = [(load_file(p + "/model.safetensors"), float(w)) for p, w in zip(pairs[::2], pairs[1::2])]
merged = {k: sum(w * s[k].astype(np.float32) for s, w in states).astype(states[0][0][k].dtype) for k in states[0][0]}
save_file(merged, out + "/model.safetensors")
"""


def synthetic_spec(gib: float, dtype: str) -> TinySpec:
    """A Qwen3 geometry (hidden 1024, ffn 4096, vocab 32000) with enough layers for `gib` GiB per checkpoint."""
    base = dict(hidden=1024, ffn=4096, heads=8, kv_heads=4, head_dim=128, vocab=32000, dtype=dtype)
    item = parse_dtype(dtype).itemsize

    def size(layers: int) -> int:
        shapes = qwen3_tensor_shapes(qwen3_config(TinySpec(layers=layers, **base), 0, 0))
        return sum(math.prod(s) for s in shapes.values()) * item

    per_layer = size(2) - size(1)
    layers = max(1, math.ceil((gib * GIB - (size(1) - per_layer)) / per_layer))
    return TinySpec(layers=layers, **base)


def make_synthetic(out: Path, spec: TinySpec, seed: int) -> Path:
    if (out / "config.json").exists():
        return out
    config = qwen3_config(spec, 0, 0)
    dtype = parse_dtype(spec.dtype)
    specs = [TensorSpec(n, s, dtype) for n, s in qwen3_tensor_shapes(config).items()]
    gen = torch.Generator().manual_seed(seed)
    with CheckpointWriter(out, specs, max_shard_bytes=2 * GIB, force=True) as w:
        for s in specs:
            w.add(s.name, (torch.randn(s.shape, generator=gen) * 0.02).to(dtype))
        w.write_config(config)
        return w.commit()


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run one side; return (wall seconds, CPU seconds, peak RSS GiB), all of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / GIB


def warm(paths: list[Path]) -> None:
    for p in paths:
        for f in p.glob("*.safetensors"):
            with open(f, "rb") as fh:
                while fh.read(64 * 2**20):
                    pass


def max_abs(a: Path, b: Path) -> float:
    x, y = Checkpoint.open(a), Checkpoint.open(b)
    if sorted(x.names()) != sorted(y.names()):
        return float("inf")
    return max((x.read(n).float() - y.read(n).float()).abs().max().item() for n in x.names())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--gib", type=float, default=1.0, help="size of each input checkpoint")
    ap.add_argument("--dtype", default="float32", help="inputs' and output dtype")
    ap.add_argument("--work", type=Path, default=Path("/tmp/growbench-bench-merge"))
    ap.add_argument("--repeat", type=int, default=2, help="runs per side; the table shows the fastest wall time "
                    "and the highest peak RSS")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic inputs for the next run")
    args = ap.parse_args()

    spec = synthetic_spec(args.gib, args.dtype)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    inputs = [make_synthetic(args.work / f"in{i}", spec, seed=i) for i in range(args.models)]
    size = Checkpoint.open(inputs[0]).total_bytes / GIB
    print(f"inputs: {args.models} x {size:.2f} GiB ({spec.layers} layers, {args.dtype}), "
          f"made in {time.perf_counter() - t0:.0f} s")
    weights = [round(1 / args.models, 6) for _ in inputs[:-1]]
    weights.append(round(1 - sum(weights), 6))
    recipe = inline_recipe([f"{p}:{w}" for p, w in zip(inputs, weights)], {"normalize": False}, dtype=args.dtype)
    outs = {name: args.work / f"out-{name}" for name in ("growbench", "baseline")}
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)

    mergekit = find_mergekit()
    if mergekit is not None:
        (args.work / "mergekit.yaml").write_text(mergekit_yaml(recipe))
        baseline_name = "mergekit 0.1.5"
        baseline = [str(mergekit), str(args.work / "mergekit.yaml"), str(outs["baseline"]), "--no-copy-tokenizer"]
    else:
        baseline_name = "numpy (whole state dicts)"
        baseline = [sys.executable, "-c", NUMPY_BASELINE, str(outs["baseline"])]
        baseline += [str(x) for p, w in zip(inputs, weights) for x in (p, w)]
    ours = [sys.executable, "-m", "suite.cli", "merge", str(outs["growbench"]), "--no-normalize",
            "--dtype", args.dtype, "--db", str(args.work / "bench.duckdb")]
    ours += [x for p, w in zip(inputs, weights) for x in ("--model", f"{p}:{w}")]

    sides = [("growbench", ours, {**os.environ, "PYTHONPATH": str(ROOT)}, outs["growbench"]),
             (baseline_name, baseline, None, outs["baseline"])]
    load = os.getloadavg()[0]
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in sides}
    for _ in range(args.repeat):  # interleaved, so load from other processes hits both sides alike
        for name, cmd, env, out in sides:
            shutil.rmtree(out, ignore_errors=True)
            if cmd is baseline and mergekit is None:
                out.mkdir()
                shutil.copy(inputs[0] / "config.json", out / "config.json")
            warm(inputs)
            runs[name].append(run_child(cmd, env))
    rows = {name: (min(x[0] for x in r), min(x[1] for x in r), max(x[2] for x in r)) for name, r in runs.items()}
    diff = max_abs(outs["growbench"], outs["baseline"])
    (g_wall, g_cpu, g_rss), (b_wall, b_cpu, _) = rows["growbench"], rows[baseline_name]
    print(f"\nhost: {platform.node()} ({os.cpu_count()} cpus), torch {torch.__version__}")
    print(f"best of {args.repeat} interleaved runs per side; 1-min load average at start: {load:.1f}")
    print(f"{'side':28} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for name, (wall, cpu, rss) in rows.items():
        print(f"{name:28} {wall:8.1f} {cpu:8.1f} {rss:13.2f}")
    print(f"\nspeed-up growbench vs {baseline_name}: {b_wall / g_wall:.2f}x (target >= 2x) "
          f"{'PASS' if b_wall / g_wall >= 2 else 'FAIL'}; CPU time ratio {b_cpu / g_cpu:.2f}x")
    print(f"growbench peak RSS: {g_rss:.2f} GiB (target <= 2 GiB) {'PASS' if g_rss <= 2 else 'FAIL'}")
    print(f"max-abs difference: {diff:.3g} (target <= 1e-6) {'PASS' if diff <= 1e-6 else 'FAIL'}")
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
