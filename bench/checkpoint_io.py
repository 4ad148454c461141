"""Streaming checkpoint copy against `cp -r` (+ `sync`) and the I/O floor: throughput, peak RSS, where time went.

    python -m bench.checkpoint_io [--gib 2.0] [--shard-mib 512] [--repeat 3] [--workdir DIR]

Builds a synthetic sharded checkpoint of --gib GiB (a Qwen3-like layout: hidden 2048, FFN 8192), then each round
runs, in turn: the floor (`cat` of the checkpoint, then `dd conv=fsync` of a file its size: bench/floor.py), `cp -r`,
`cp -r` + `sync` (the durability growbench gives), and growbench's two copy paths in child processes that report
where their time went: `copy_from` (the kernel copies each tensor file to file, as growth copies what a plan leaves
unchanged) and read + add (each tensor read into memory and written back, as a transform would). Every side starts
from a warm page cache; the best of `--repeat` rounds counts. Targets: copy_from >= 0.9x cp -r + sync, read + add
>= 0.5x cp -r, peak RSS <= 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.floor import (
    GIB,
    MIB,
    Run,
    before_after,
    breakdown,
    child_report,
    floor,
    job_cpu,
    load,
    process_age,
    run_child,
    verdict,
    warm,
)
from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec

REPO = Path(__file__).resolve().parents[1]
LABELS = {"cp": "cp -r", "cp+sync": "cp -r + sync", "raw": "growbench copy_from", "tensor": "growbench read + add"}


def synthetic(out: Path, gib: float, shard_bytes: int) -> Path:
    hidden, ffn = 2048, 8192
    layer = {"self_attn.q_proj.weight": (hidden, hidden), "self_attn.k_proj.weight": (hidden // 4, hidden),
             "self_attn.v_proj.weight": (hidden // 4, hidden), "self_attn.o_proj.weight": (hidden, hidden),
             "mlp.gate_proj.weight": (ffn, hidden), "mlp.up_proj.weight": (ffn, hidden),
             "mlp.down_proj.weight": (hidden, ffn), "input_layernorm.weight": (hidden,)}
    per_layer = sum(math.prod(s) for s in layer.values()) * 4
    layers = max(1, round(gib * GIB / per_layer))
    specs = [TensorSpec(f"model.layers.{i}.{k}", s, torch.float32) for i in range(layers) for k, s in layer.items()]
    with CheckpointWriter(out, specs, max_shard_bytes=shard_bytes) as w:
        for i, s in enumerate(specs):
            w.add(s.name, torch.full(s.shape, float(i % 97)))
        w.write_config({"model_type": "llama", "num_hidden_layers": layers})
        return w.commit()


def child(args: argparse.Namespace) -> None:
    """One growbench copy in its own process; prints a JSON report (its own time and breakdown) as the last line."""
    from growth.iostats import IOStats

    job = json.loads(args.child)
    started, start, cpu = process_age(), time.perf_counter(), job_cpu()
    stats = IOStats()
    src = Checkpoint.open(job["src"])
    specs = [TensorSpec(n, src.info(n).shape, src.info(n).dtype) for n in src.names()]
    with CheckpointWriter(job["dst"], specs, max_shard_bytes=job["shard_bytes"], stats=stats) as w:
        for s in specs:
            if job["mode"] == "raw":
                w.copy_from(src, s.name)
            else:
                with stats.span("read"):
                    tensor = src.read(s.name, reuse=True)
                w.add(s.name, tensor)
        w.write_config(src.config)
        w.copy_aux_from(src)
        w.commit()
    stats.stop()
    print(child_report(started, time.perf_counter() - start, job_cpu() - cpu, stats.summary()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--shard-mib", type=int, default=512)
    ap.add_argument("--repeat", "--repeats", type=int, default=1, help="interleaved rounds; the best of each counts")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    shard_bytes = args.shard_mib * MIB
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        src = synthetic(work / "src", args.gib, shard_bytes)
        size = Checkpoint.open(src).total_bytes
        runs: dict[str, list[Run]] = {mode: [] for mode in LABELS}
        floors, loads = [], [load()]
        for _ in range(args.repeat):
            warm([src])
            floors.append(floor([src], size, work))
            for mode in LABELS:
                dst = work / f"copy-{mode}"
                if mode == "cp":
                    cmd = ["cp", "-r", str(src), str(dst)]
                elif mode == "cp+sync":
                    cmd = ["sh", "-c", f'cp -r "{src}" "{dst}" && sync "{dst}"/*']
                else:
                    job = {"src": str(src), "dst": str(dst), "shard_bytes": shard_bytes, "mode": mode}
                    cmd = [sys.executable, "-m", "bench.checkpoint_io", "--child", json.dumps(job)]
                warm([src])
                runs[mode].append(run_child(cmd, scratch=work, env=env, cwd=REPO))
                shutil.rmtree(dst)
            loads.append(load())
    best_floor = min(floors, key=lambda f: f.wall)
    read_s, write_s, floor_s = best_floor.read, best_floor.write, best_floor.wall
    best = {mode: min(rs, key=lambda r: r.report.get("job_s", r.wall)) for mode, rs in runs.items()}
    wall = {mode: r.report.get("job_s", r.wall) for mode, r in best.items()}
    gib = size / GIB
    print(f"checkpoint: {gib:.2f} GiB in {args.shard_mib} MiB shards; load averages {' | '.join(loads)} "
          "(start | after each round)")
    print(f"floor: cat {read_s:.2f} s + dd conv=fsync {write_s:.2f} s = {floor_s:.2f} s, {best_floor.cpu:.2f} CPU s")
    print(f"{'copy':<24}{'wall s':>8}{'GiB/s':>8}{'x floor':>9}{'vs cp':>8}{'vs cp+sync':>12}{'peak RSS MiB':>14}")
    print(f"{'floor (cat + dd fsync)':<24}{floor_s:>8.2f}{gib / floor_s:>8.2f}{1:>9.2f}")
    for mode, label in LABELS.items():
        print(f"{label:<24}{wall[mode]:>8.2f}{gib / wall[mode]:>8.2f}{wall[mode] / floor_s:>9.2f}"
              f"{wall['cp'] / wall[mode]:>7.2f}x{wall['cp+sync'] / wall[mode]:>11.2f}x{best[mode].rss / MIB:>14.0f}")
    print(f"(best of {args.repeat} interleaved rounds; growbench's time is its own, from opening the source to the "
          "fsynced publish, without interpreter start and imports; cp -r does not fsync, cp -r + sync does)")
    for mode in ("raw", "tensor"):
        print(f"\nwhere {LABELS[mode]}'s best run went: {before_after(best[mode])}; the copy:")
        print("\n".join(breakdown(best[mode])))
    raw, tensor = wall["cp+sync"] / wall["raw"], wall["cp"] / wall["tensor"]
    rss = max(r.rss for mode in ("raw", "tensor") for r in runs[mode])
    print(f"\ncopy_from: {raw:.2f}x cp -r + sync (target >= 0.9x) {verdict(raw >= 0.9)}; read + add: {tensor:.2f}x "
          f"cp -r (target >= 0.5x) {verdict(tensor >= 0.5)}; peak RSS {rss / MIB:.0f} MiB (target <= 1024) "
          f"{verdict(rss <= GIB)}")


if __name__ == "__main__":
    main()
