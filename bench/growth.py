"""Grow a card-scale checkpoint with growbench, against `cp -r` + `sync` and the I/O floor, in the same run.

    .venv/bin/python -m bench.growth [--layers 36] [--repeat 3] [--work DIR] [--cp-grown] [--digest] [--keep]

Synthesizes a bf16 checkpoint of Qwen3-4B-Base's exact geometry (the shipped seed config qwen3-4b-base: 36 layers,
tied embeddings, 4,022,468,096 parameters, 8.0 GB in 3 shards) and grows it with the card's plan openseek-mid-v1
(untie, FFN 9728 -> 19456 with HyperCloning noise at 10 dB, layers [14, 34) stacked) to 10,613,858,816 parameters,
21.2 GB. `--layers N` builds the same geometry with N layers and scales the stacked range (for quick runs). Each
round runs, in turn: the floor (`cat` of the source, then `dd conv=fsync` of an output-sized file: bench/floor.py),
`cp -r` + `sync` of the source (growbench fsyncs before publishing, so the copy does too; `--cp-grown` copies the
grown output instead, as the issue measured, at the cost of a second 21 GB on disk), and the grow (`growth.grow.grow`,
what `growbench grow` runs, with the CLI's huge-page setting, in a child process that reports where its time went).
Every side starts from a warm source; the best of `--repeat` rounds counts. Compared: output bytes per second of
the grow against bytes per second of cp + sync (target >= 0.9x), the grow's wall time against the floor, its peak
RSS (target <= 1 GiB), and the breakdown of its best run. Disk: the source plus one output-sized file at a time
(about 30 GB at the card shape); everything is deleted afterwards unless `--keep`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
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
    data_files,
    floor,
    harness_args,
    job_cpu,
    load,
    process_age,
    run_child,
    verdict,
    warm,
)
from growth.checkpoint import CheckpointWriter, TensorSpec
from growth.fixture import qwen3_tensor_shapes
from growth.grow import plan_checkpoint, read_config_file

REPO = Path(__file__).resolve().parents[1]
CARD_LAYERS, CARD_RANGE = 36, (14, 34)
SHARD_BYTES = 4 * 10**9  # Qwen3-4B-Base ships 3 shards


def source_config(layers: int) -> dict:
    config = read_config_file("qwen3-4b-base")
    config.update(num_hidden_layers=layers, max_window_layers=layers)
    return config


def make_source(out: Path, layers: int) -> Path:
    """bf16 N(0, 0.02) weights (norms ones) from a 4M-value pool tiled at a per-tensor shift: fast at 8 GB."""
    if (out / "config.json").exists():
        return out
    config = source_config(layers)
    specs = [TensorSpec(n, s, torch.bfloat16) for n, s in qwen3_tensor_shapes(config).items()]
    pool = (torch.randn(1 << 22, generator=torch.Generator().manual_seed(0)) * 0.02).to(torch.bfloat16)
    with CheckpointWriter(out, specs, max_shard_bytes=SHARD_BYTES, force=True) as w:
        for i, s in enumerate(specs):
            n = math.prod(s.shape)
            if len(s.shape) == 1:
                w.add(s.name, torch.ones(s.shape, dtype=torch.bfloat16))
            else:
                w.add(s.name, pool.roll(i * 7919).repeat(-(-n // pool.numel()))[:n].view(s.shape))
        w.write_config(config)
        return w.commit()


def plan_for(layers: int, work: Path) -> str:
    """The shipped card plan at 36 layers; the same steps with the stacked range scaled otherwise."""
    if layers == CARD_LAYERS:
        return "openseek-mid-v1"
    start = round(CARD_RANGE[0] * layers / CARD_LAYERS)
    end = max(start + 1, round(CARD_RANGE[1] * layers / CARD_LAYERS))
    path = work / "plan.yaml"
    path.write_text(f"""name: openseek-mid-v1-{layers}l
seed: 0
steps:
  - op: untie
  - {{op: width, intermediate_size: {2 * source_config(layers)['intermediate_size']}, snr_db: 10}}
  - {{op: depth, start: {start}, end: {end}}}
""")
    return str(path)


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in data_files(path):
        if f.suffix == ".safetensors" or f.name.endswith(".index.json"):
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                while chunk := fh.read(64 * MIB):
                    h.update(chunk)
    return h.hexdigest()


def child(args: argparse.Namespace) -> None:
    """The growbench side, in its own process: grow, then print a JSON report as the last line."""
    from growth.grow import grow
    from growth.iostats import IOStats

    job = json.loads(args.child)
    started, start, cpu = process_age(), time.perf_counter(), job_cpu()
    stats = IOStats()
    result = grow(job["src"], job["out"], job["plan"], stats=stats)
    stats.stop()
    print(child_report(started, time.perf_counter() - start, job_cpu() - cpu, stats.summary(),
                       num_parameters=result.lineage["num_parameters"]))


def main() -> None:
    ap = harness_args(__doc__.splitlines()[0], "/tmp/growbench-bench-growth", "floor, cp, growbench", "source")
    ap.add_argument("--layers", type=int, default=CARD_LAYERS, help="layers of the synthetic source (36: the card)")
    ap.add_argument("--cp-grown", action="store_true", help="cp the grown output (not the source): 2 outputs on disk")
    ap.add_argument("--digest", action="store_true", help="print the sha256 of the first grown output's weights")
    args = ap.parse_args()
    if args.child:
        return child(args)

    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    source = make_source(args.work / "source", args.layers)
    built = time.perf_counter() - t0
    plan = plan_for(args.layers, args.work)
    src_ckpt, grown_plan = plan_checkpoint(source, plan, meta_check=False)
    src_bytes = sum(f.stat().st_size for f in data_files(source))
    out_bytes = sum(math.prod(s) * d.itemsize for s, d in grown_plan.final.tensors.values())
    need = out_bytes * (2 if args.cp_grown else 1) * 1.05
    if shutil.disk_usage(args.work).free < need:
        sys.exit(f"need {need / 1e9:.0f} GB free under {args.work} for one output at a time")
    grown, copy = args.work / "grown", args.work / "copy"
    env = {**os.environ, "PYTHONPATH": str(REPO), "THP_MEM_ALLOC_ENABLE": "1"}  # as `growbench grow` sets it
    job = json.dumps({"src": str(source), "out": str(grown), "plan": plan})

    loads, floors, cps, runs, sha = [load()], [], [], [], None
    for _ in range(args.repeat):  # interleaved, so load from other processes hits every side alike
        warm([source])
        floors.append(floor([source], out_bytes, args.work))
        shutil.rmtree(grown, ignore_errors=True)
        warm([source])
        runs.append(run_child([sys.executable, "-m", "bench.growth", "--child", job], scratch=args.work, env=env,
                              cwd=REPO))
        if args.digest and sha is None:
            sha = digest(grown)
        if not args.cp_grown:
            shutil.rmtree(grown)
        cp_src = grown if args.cp_grown else source
        warm([cp_src])
        cps.append((run_child(["sh", "-c", f'cp -r "{cp_src}" "{copy}" && sync "{copy}"/*'], scratch=args.work),
                    sum(f.stat().st_size for f in data_files(copy))))
        shutil.rmtree(copy)
        shutil.rmtree(grown, ignore_errors=True)
        loads.append(load())

    best_floor = min(floors, key=lambda f: f.wall)
    read_s, write_s, floor_s = best_floor.read, best_floor.write, best_floor.wall
    best = min(runs, key=lambda r: r.wall)
    job_s = best.report["job_s"]
    best_cp, cp_bytes = min(cps, key=lambda c: c[0].wall / c[1])
    rate, cp_rate = out_bytes / best.wall, cp_bytes / best_cp.wall
    rss = max(r.rss for r in runs)
    print(f"source: {src_bytes / 1e9:.2f} GB bf16, {args.layers} layers, {src_ckpt.num_parameters():,} parameters "
          f"({'built in %.0f s' % built if built > 1 else 'reused'}); plan {grown_plan.plan.name}")
    print(f"grown:  {out_bytes / 1e9:.2f} GB, {best.report['num_parameters']:,} parameters")
    print(f"load averages {' | '.join(loads)} (start | after each round); torch {torch.__version__}")
    print(f"floor: cat {src_bytes / 1e9:.2f} GB {read_s:.2f} s + dd conv=fsync {out_bytes / 1e9:.2f} GB "
          f"{write_s:.2f} s = {floor_s:.2f} s")
    print(f"{'side':36}{'wall s':>8}{'CPU s':>8}{'peak RSS GiB':>14}{'MB/s':>8}{'x floor':>9}")
    rows: list[tuple[str, Run | None, float, float]] = [
        ("floor (cat source + dd conv=fsync)", Run(floor_s, best_floor.cpu, 0), floor_s, out_bytes / floor_s),
        (f"cp -r + sync ({'grown' if args.cp_grown else 'source'}, {cp_bytes / 1e9:.1f} GB)", best_cp,
         best_cp.wall, cp_rate),
        ("growbench grow (whole process)", best, best.wall, rate),
        ("growbench grow (grow alone)", Run(job_s, best.report["job_cpu_s"], 0), job_s, out_bytes / job_s)]
    for name, run, wall, mbs in rows:
        cpu = f"{run.cpu:8.1f}" + (f"{run.rss / GIB:14.2f}" if run.rss else f"{'':14}")
        times = f"{wall / floor_s:9.2f}" if not name.startswith("cp") else f"{'':9}"
        print(f"{name:36}{wall:8.2f}{cpu}{mbs / 1e6:8.0f}{times}")
    print(f"(best of {args.repeat} interleaved rounds; each side starts from a warm source)")
    print(f"\nwhere the best grow went: {before_after(best)}; the grow:")
    print("\n".join(breakdown(best)))
    print(f"\ngrow output rate / cp + sync rate: {rate / cp_rate:.2f}x (target >= 0.9x) {verdict(rate >= 0.9 * cp_rate)}"
          f"; grow alone {out_bytes / job_s / cp_rate:.2f}x")
    print(f"ratio to the floor: {best.wall / floor_s:.2f}x whole process, {job_s / floor_s:.2f}x grow alone; in CPU "
          f"seconds, which load does not move: grow {best.report['job_cpu_s']:.1f} against the floor's "
          f"{best_floor.cpu:.1f} (cat + dd) and cp + sync's {best_cp.cpu:.1f}")
    print(f"grow peak RSS: {rss / GIB:.2f} GiB (target <= 1 GiB) {verdict(rss <= GIB)}")
    if sha:
        print(f"output sha256 (weights and index): {sha}")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
