"""Merge 5 synthetic Qwen3 checkpoints with growbench, mergekit and the I/O floor, in the same run.

    .venv/bin/python -m bench.merge [--models 5] [--gb 1.5] [--dtype float32] [--repeat 3] [--work DIR]
        [--workers N] [--sweep-workers] [--keep]

Inputs: `--models` synthetic checkpoints of `--gb` GB each (Qwen3 geometry: hidden 1024, ffn 4096, vocab 32000,
as many layers as the size needs), weights 0.30/0.25/0.15/0.15/0.15 (equal weights for another count), no
normalisation, output in the inputs' dtype. Each round runs, in turn: the floor (`cat` of the inputs, then
`dd conv=fsync` of an output-sized file: bench/floor.py), mergekit 0.1.5's `mergekit-yaml` (its own venv,
bench/setup_mergekit.sh or $GROWBENCH_MERGEKIT; without it, numpy on whole state dicts), and growbench
(`plan_merge` + `run_merge`, the code `growbench merge` runs, in a child process that reports where its time went,
then the CLI itself).
Every side starts from warm inputs; the best of `--repeat` rounds counts. Printed: wall, CPU and peak RSS per side,
each side's ratio to the floor (growbench three times: the whole process, the merge alone without interpreter start
and imports, and `growbench merge` as a user runs it, which also records the model in DuckDB), the breakdown of growbench's best run, whether growbench's output is bit-identical to mergekit's, and
the targets: <= 1.3x the floor, peak RSS <= 1 GiB, bit-identical. `--sweep-workers` also times 1..N merge workers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from bench.floor import (
    GIB,
    Run,
    before_after,
    breakdown,
    child_report,
    floor,
    harness_args,
    job_cpu,
    load,
    process_age,
    run_child,
    table,
    verdict,
    warm,
)
from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec, parse_dtype
from growth.fixture import TinySpec, qwen3_config, qwen3_tensor_shapes
from growth.merge.mergekit import find_mergekit, mergekit_yaml
from growth.merge.recipe import inline_recipe

ROOT = Path(__file__).resolve().parents[1]
CARD_WEIGHTS = (0.30, 0.25, 0.15, 0.15, 0.15)
NUMPY_BASELINE = """
import sys, numpy as np
from safetensors.numpy import load_file, save_file
out, pairs = sys.argv[1], sys.argv[2:]
states = [(load_file(p + "/model.safetensors"), float(w)) for p, w in zip(pairs[::2], pairs[1::2])]
merged = {k: sum(w * s[k].astype(np.float32) for s, w in states).astype(states[0][0][k].dtype) for k in states[0][0]}
save_file(merged, out + "/model.safetensors")
"""


def synthetic_spec(gb: float, dtype: str) -> TinySpec:
    """A Qwen3 geometry (hidden 1024, ffn 4096, vocab 32000) with enough layers for `gb` GB per checkpoint."""
    base = dict(hidden=1024, ffn=4096, heads=8, kv_heads=4, head_dim=128, vocab=32000, dtype=dtype)
    item = parse_dtype(dtype).itemsize

    def size(layers: int) -> int:
        shapes = qwen3_tensor_shapes(qwen3_config(TinySpec(layers=layers, **base), 0, 0))
        return sum(math.prod(s) for s in shapes.values()) * item

    per_layer = size(2) - size(1)
    layers = max(1, math.ceil((gb * 1e9 - (size(1) - per_layer)) / per_layer))
    return TinySpec(layers=layers, **base)


def make_synthetic(out: Path, spec: TinySpec, seed: int) -> Path:
    """Random weights, N(0, 0.02), from a 4M-value pool tiled at a seed-dependent shift: fast to make at any size."""
    if (out / "config.json").exists():
        return out
    config = qwen3_config(spec, 0, 0)
    dtype = parse_dtype(spec.dtype)
    specs = [TensorSpec(n, s, dtype) for n, s in qwen3_tensor_shapes(config).items()]
    pool = (torch.randn(1 << 22, generator=torch.Generator().manual_seed(seed)) * 0.02).to(dtype)
    with CheckpointWriter(out, specs, max_shard_bytes=2 * GIB, force=True) as w:
        for i, s in enumerate(specs):
            n = math.prod(s.shape)
            tiled = pool.roll(i * 7919 + seed).repeat(-(-n // pool.numel()))[:n]
            w.add(s.name, tiled.view(s.shape))
        w.write_config(config)
        return w.commit()


def compare(ours: Path, theirs: Path) -> tuple[bool, float]:
    """(every tensor bit-identical, max-abs difference) between two checkpoints, whatever their sharding."""
    x, y = Checkpoint.open(ours), Checkpoint.open(theirs)
    if sorted(x.names()) != sorted(y.names()):
        return False, float("inf")
    same, diff = True, 0.0
    for name in x.names():
        a, b = x.read(name), y.read(name)
        same &= a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
        diff = max(diff, (a.float() - b.float()).abs().max().item())
    return same, diff


def child(args: argparse.Namespace) -> None:
    """The growbench side, in its own process: plan and run the merge, print a JSON report as the last line."""
    from growth.iostats import IOStats
    from growth.merge.execute import default_workers, plan_merge, run_merge

    spec = json.loads(args.child)
    started, start, cpu = process_age(), time.perf_counter(), job_cpu()
    stats = IOStats()
    plan = plan_merge(inline_recipe(spec["models"], {"normalize": False}, dtype=spec["dtype"]))
    run_merge(plan, spec["out"], workers=spec["workers"], stats=stats)
    stats.stop()
    print(child_report(started, time.perf_counter() - start, job_cpu() - cpu, stats.summary(),
                       workers=spec["workers"] or default_workers()))


def main() -> None:
    ap = harness_args(__doc__.splitlines()[0], "/tmp/growbench-bench-merge", "floor, tool, growbench", "inputs")
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--gb", type=float, default=1.5, help="size of each input checkpoint, in GB (1e9 bytes)")
    ap.add_argument("--dtype", default="float32", help="inputs' and output dtype")
    ap.add_argument("--workers", type=int, default=None, help="merge worker threads (default: one per CPU)")
    ap.add_argument("--sweep-workers", action="store_true", help="also time growbench with 1..CPUs workers")
    args = ap.parse_args()
    if args.child:
        return child(args)

    spec = synthetic_spec(args.gb, args.dtype)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    inputs = [make_synthetic(args.work / f"in{i}", spec, seed=i) for i in range(args.models)]
    in_bytes = Checkpoint.open(inputs[0]).total_bytes
    print(f"inputs: {args.models} x {in_bytes / 1e9:.2f} GB ({spec.layers} layers, {args.dtype}), "
          f"made in {time.perf_counter() - t0:.0f} s")
    weights = list(CARD_WEIGHTS) if args.models == len(CARD_WEIGHTS) else [1 / args.models] * args.models
    models = [f"{p}:{w}" for p, w in zip(inputs, weights)]
    recipe = inline_recipe(models, {"normalize": False}, dtype=args.dtype)
    outs = {name: args.work / f"out-{name}" for name in ("growbench", "baseline", "cli")}

    mergekit = find_mergekit()
    if mergekit is not None:
        (args.work / "mergekit.yaml").write_text(mergekit_yaml(recipe))
        tool = "mergekit 0.1.5"
        tool_cmd = [str(mergekit), str(args.work / "mergekit.yaml"), str(outs["baseline"]), "--no-copy-tokenizer"]
    else:
        tool = "numpy (whole state dicts)"
        tool_cmd = [sys.executable, "-c", NUMPY_BASELINE, str(outs["baseline"])]
        tool_cmd += [str(x) for p, w in zip(inputs, weights) for x in (p, w)]

    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def ours(workers: int | None) -> Run:
        shutil.rmtree(outs["growbench"], ignore_errors=True)
        warm(inputs)
        job = json.dumps({"models": models, "dtype": args.dtype, "out": str(outs["growbench"]), "workers": workers})
        return run_child([sys.executable, "-m", "bench.merge", "--child", job], scratch=args.work, env=env, cwd=ROOT)

    def cli() -> Run:
        shutil.rmtree(outs["cli"], ignore_errors=True)
        warm(inputs)
        cmd = [sys.executable, "-m", "suite.cli", "merge", str(outs["cli"]), "--no-normalize", "--dtype", args.dtype,
               "--db", str(args.work / "bench.duckdb"), *[x for m in models for x in ("--model", m)]]
        return run_child(cmd, scratch=args.work, env=env, cwd=ROOT)

    def baseline() -> Run:
        shutil.rmtree(outs["baseline"], ignore_errors=True)
        if mergekit is None:
            outs["baseline"].mkdir()
            shutil.copy(inputs[0] / "config.json", outs["baseline"] / "config.json")
        warm(inputs)
        return run_child(tool_cmd, scratch=args.work)

    loads, floors, tools, runs, clis = [load()], [], [], [], []
    for _ in range(args.repeat):  # interleaved, so load from other processes hits every side alike
        warm(inputs)
        floors.append(floor(inputs, in_bytes, args.work))
        tools.append(baseline())
        runs.append(ours(args.workers))
        clis.append(cli())
        loads.append(load())
    sweep = {w: ours(w) for w in range(1, (os.cpu_count() or 1) + 1)} if args.sweep_workers else {}

    best_floor = min(floors, key=lambda f: f.wall)
    read_s, write_s, floor_s = best_floor.read, best_floor.write, best_floor.wall
    best_tool = min(tools, key=lambda r: r.wall)
    best = min(runs, key=lambda r: r.wall)
    best_cli = min(clis, key=lambda r: r.wall)
    job = best.report["job_s"]
    same, diff = compare(outs["growbench"], outs["baseline"])
    rss = max(r.rss for r in runs)

    print(f"\nhost: {platform.node()} ({os.cpu_count()} CPUs), torch {torch.__version__}; load averages "
          f"{' | '.join(loads)} (start | after each round)")
    print(f"floor: cat {args.models} x {in_bytes / 1e9:.2f} GB {read_s:.2f} s + dd conv=fsync "
          f"{in_bytes / 1e9:.2f} GB {write_s:.2f} s = {floor_s:.2f} s")
    rows = [("floor (cat inputs + dd conv=fsync)", Run(floor_s, best_floor.cpu, 0), floor_s),
            (tool, best_tool, best_tool.wall), (f"growbench ({best.report['workers']} workers)", best, best.wall),
            ("growbench, merge alone (no imports)", Run(job, best.report["job_cpu_s"], 0), job),
            ("growbench merge CLI (+ DuckDB record)", best_cli, best_cli.wall)]
    rows += [(f"growbench, {w} workers", r, r.wall) for w, r in sweep.items()]
    print("\n".join(table(rows, floor_s, args.repeat)))
    print(f"\nwhere growbench's best run went: {before_after(best)}; the merge:")
    print("\n".join(breakdown(best)))
    print(f"\ngrowbench vs {tool}: {best_tool.wall / best.wall:.2f}x faster; CPU {best_tool.cpu / best.cpu:.2f}x less")
    print(f"ratio to the floor: {best.wall / floor_s:.2f}x whole process, {job / floor_s:.2f}x merge alone "
          f"(target <= 1.3x) {verdict(best.wall / floor_s <= 1.3)}; in CPU seconds, which load does not move: "
          f"merge {best.report['job_cpu_s']:.2f} against the floor's {best_floor.cpu:.2f} (cat + dd), "
          f"{best.report['job_cpu_s'] / best_floor.cpu:.2f}x")
    print(f"growbench peak RSS: {rss / GIB:.2f} GiB (target <= 1 GiB) {verdict(rss <= GIB)}")
    print(f"output vs {tool}: {'bit-identical' if same else 'differs'} (max-abs {diff:.3g}) {verdict(same)}")
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
