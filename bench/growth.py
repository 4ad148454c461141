"""Growth throughput and memory against `cp`, on a synthetic checkpoint of more than 2 GiB.

    .venv/bin/python -m bench.growth [--workdir DIR] [--keep] [--repeat N]

Builds a synthetic float32 Qwen3 checkpoint (hidden 1024, 24 layers, FFN 5632, vocab 65536: 2.03 GiB, 1 GiB
shards), then runs `growbench grow` on it in a child process with the card's plan scaled to 24 layers: untie, FFN
x2 with HyperCloning noise at 10 dB, depth [9, 23) block copy (the card's [14, 34) of 36 layers, scaled) for 38
layers. Reported: wall time and output bytes/s of the grow, against `cp -r` of the grown output followed by `sync`
of the copied files (the grow fsyncs its output before publishing, so the baseline does too; the source is read once
before each grow, as cp's input is fresh in the page cache), and the grow's peak RSS (VmHWM of the child, from
wait4's ru_maxrss). Grow and cp alternate `--repeat` times and the best wall time of each counts, with CPU seconds
beside it: on a shared machine the wall times move with the load. Targets: output bytes/s >= 0.5x cp; peak RSS <= 2x
the largest decoder layer of the grown model + 512 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec
from growth.fixture import TinySpec, init_tensor, qwen3_config, qwen3_tensor_shapes

REPO = Path(__file__).resolve().parents[1]

SPEC = TinySpec(layers=24, hidden=1024, ffn=5632, heads=8, kv_heads=2, head_dim=128, vocab=65536)
PLAN = """name: openseek-mid-v1-scaled
seed: 0
steps:
  - op: untie
  - {op: width, factor: 2, snr_db: 10}
  - {op: depth, start: 9, end: 23}
"""
MiB = 2**20


def make_source(out: Path) -> Path:
    config = qwen3_config(SPEC, eos_id=0, pad_id=0)
    specs = [TensorSpec(n, s, torch.float32) for n, s in qwen3_tensor_shapes(config).items()]
    with CheckpointWriter(out, specs, max_shard_bytes=2**30) as w:
        for spec in specs:
            w.add(spec.name, init_tensor(spec.name, spec.shape, seed=0))
        w.write_config(config)
        return w.commit()


def run_child(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + sys) and peak RSS in bytes of one child process and what it waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux reports KiB


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def largest_layer_bytes(ckpt: Checkpoint) -> int:
    per_layer: dict[str, int] = {}
    for name in ckpt.names():
        if name.startswith("model.layers."):
            layer = name.split(".")[2]
            per_layer[layer] = per_layer.get(layer, 0) + ckpt.info(name).nbytes
    return max(per_layer.values())


def _warm(path: Path) -> None:
    for f in sorted(path.iterdir()):
        with open(f, "rb") as fh:
            while fh.read(64 * MiB):
                pass


def _walls(runs: list[tuple[float, float, int]]) -> str:
    return ", ".join(f"{wall:.1f} s" for wall, _, _ in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="Where to write (default: a temp folder).")
    parser.add_argument("--keep", action="store_true", help="Keep the checkpoints afterwards.")
    parser.add_argument("--repeat", type=int, default=2, help="Alternating grow/cp runs; the best of each counts.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="growbench-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        source = work / "source"
        if not source.exists():
            make_source(source)
        built_s = time.perf_counter() - t0
        build = f"built in {built_s:.1f} s" if built_s > 1 else "reused"
        (work / "plan.yaml").write_text(PLAN)
        grown, copy = work / "grown", work / "copy"
        grow_runs, cp_runs = [], []
        for _ in range(args.repeat):  # alternate, so both see the same machine load; report the best of each
            shutil.rmtree(grown, ignore_errors=True)
            _warm(source)  # cp reads the just-written output from the page cache; give the grow a hot input too
            grow_runs.append(run_child([sys.executable, "-m", "suite.cli", "grow", str(source), str(grown),
                                        "--plan", str(work / "plan.yaml")]))
            shutil.rmtree(copy, ignore_errors=True)
            cp_runs.append(run_child(["sh", "-c", f'cp -r "{grown}" "{copy}" && sync "{copy}"/*']))
        out_bytes = dir_bytes(grown)
        grow_s, grow_cpu, _ = min(grow_runs)
        cp_s, cp_cpu, _ = min(cp_runs)
        grow_rss = max(rss for _, _, rss in grow_runs)
        ckpt = Checkpoint.open(grown)
        layer = largest_layer_bytes(ckpt)
        rss_target = 2 * layer + 512 * MiB
        rate, cp_rate = out_bytes / grow_s, out_bytes / cp_s
        rows = [
            ("source checkpoint", f"{dir_bytes(source) / 2**30:.2f} GiB, {SPEC.layers} layers ({build})"),
            ("grown checkpoint", f"{out_bytes / 2**30:.2f} GiB, {ckpt.config['num_hidden_layers']} layers, "
                                 f"{ckpt.num_parameters():,} parameters"),
            ("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"),
            ("grow wall time", f"best of {args.repeat}: {grow_s:.1f} s, CPU {grow_cpu:.1f} s (child process, with "
                               f"imports and planning); all runs: {_walls(grow_runs)}"),
            ("grow output rate", f"{rate / MiB:.0f} MiB/s"),
            ("cp -r + sync", f"best of {args.repeat}: {cp_s:.1f} s, CPU {cp_cpu:.1f} s, {cp_rate / MiB:.0f} MiB/s; "
                             f"all runs: {_walls(cp_runs)}"),
            ("ratio grow / cp", f"{rate / cp_rate:.2f}x (target >= 0.5x: "
                                f"{'PASS' if rate >= 0.5 * cp_rate else 'FAIL'})"),
            ("grow peak RSS", f"{grow_rss / MiB:.0f} MiB"),
            ("largest grown layer", f"{layer / MiB:.0f} MiB"),
            ("RSS target", f"<= {rss_target / MiB:.0f} MiB (2x layer + 512 MiB): "
                           f"{'PASS' if grow_rss <= rss_target else 'FAIL'}"),
        ]
        width = max(len(k) for k, _ in rows)
        print(f"growbench bench/growth.py  (torch {torch.__version__}, {os.cpu_count()} CPUs)")
        for key, value in rows:
            print(f"  {key:<{width}}  {value}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
