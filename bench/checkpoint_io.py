"""Streaming checkpoint copy vs `cp -r`: throughput ratio and peak RSS.

    python -m bench.checkpoint_io [--gib 2.0] [--shard-mib 512] [--repeats 2] [--workdir DIR]

Builds a synthetic sharded checkpoint of --gib GiB (a Qwen3-like layout: hidden 2048, FFN 8192), then, in one run,
copies it with `cp -r` and with growbench's streaming reader + writer (in a child process, so its peak RSS is its
own), alternating, best of --repeats. Targets: throughput >= 0.5x cp, peak RSS <= 1 GiB.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec

_COPY = """
import resource, sys, time
from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec
t = time.perf_counter()
src = Checkpoint.open(sys.argv[1])
specs = [TensorSpec(n, src.info(n).shape, src.info(n).dtype) for n in src.names()]
with CheckpointWriter(sys.argv[2], specs, max_shard_bytes=int(sys.argv[3])) as w:
    for s in specs:
        if sys.argv[4] == "raw":
            w.copy_from(src, s.name)
        else:
            w.add(s.name, src.read(s.name, reuse=True))
    w.write_config(src.config)
    w.copy_aux_from(src)
    w.commit()
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def synthetic(out: Path, gib: float, shard_bytes: int) -> Path:
    hidden, ffn = 2048, 8192
    layer = {"self_attn.q_proj.weight": (hidden, hidden), "self_attn.k_proj.weight": (hidden // 4, hidden),
             "self_attn.v_proj.weight": (hidden // 4, hidden), "self_attn.o_proj.weight": (hidden, hidden),
             "mlp.gate_proj.weight": (ffn, hidden), "mlp.up_proj.weight": (ffn, hidden),
             "mlp.down_proj.weight": (hidden, ffn), "input_layernorm.weight": (hidden,)}
    per_layer = sum(math.prod(s) for s in layer.values()) * 4
    layers = max(1, round(gib * 2**30 / per_layer))
    specs = [TensorSpec(f"model.layers.{i}.{k}", s, torch.float32) for i in range(layers) for k, s in layer.items()]
    with CheckpointWriter(out, specs, max_shard_bytes=shard_bytes) as w:
        for i, s in enumerate(specs):
            w.add(s.name, torch.full(s.shape, float(i % 97)))
        w.write_config({"model_type": "llama", "num_hidden_layers": layers})
        return w.commit()


def timed(cmd: list[str]) -> tuple[float, int]:
    """Copy seconds and peak RSS (bytes). A growbench child reports its own copy time, from opening the source
    to the fsynced publish, so interpreter and torch start-up (seconds on a loaded machine) are not counted."""
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    if not out:
        return time.perf_counter() - t, 0
    return float(out[-2]), int(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--shard-mib", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    shard_bytes = args.shard_mib * 2**20
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        src = synthetic(Path(tmp) / "src", args.gib, shard_bytes)
        size = Checkpoint.open(src).total_bytes
        times: dict[str, list[float]] = {"cp -r": [], "cp+sync": [], "tensor": [], "raw": []}
        rss: dict[str, int] = {}
        for r in range(args.repeats):
            for mode in times:
                dst = Path(tmp) / f"{mode.replace(' ', '')}{r}"
                if mode == "cp -r":
                    cmd = ["cp", "-r", str(src), str(dst)]
                elif mode == "cp+sync":  # the same durability as growbench's publish: data on disk before done
                    cmd = ["sh", "-c", f'cp -r "{src}" "{dst}" && sync "{dst}"/*']
                else:
                    cmd = [sys.executable, "-c", _COPY, str(src), str(dst), str(shard_bytes), mode]
                dt, peak = timed(cmd)
                times[mode].append(dt)
                rss[mode] = peak
                shutil.rmtree(dst)
    gib = size / 2**30
    best = {mode: min(ts) for mode, ts in times.items()}
    labels = {"cp -r": "cp -r", "cp+sync": "cp -r + sync", "tensor": "growbench read+add",
              "raw": "growbench copy_from"}
    print(f"checkpoint: {gib:.2f} GiB in {args.shard_mib} MiB shards, best of {args.repeats}; growbench runs in a "
          "child process and fsyncs every shard before publishing, cp -r does not")
    print(f"{'copy':<22}{'wall s':>10}{'GiB/s':>10}{'ratio vs cp':>13}{'peak RSS MiB':>14}")
    for mode, label in labels.items():
        ratio = best["cp -r"] / best[mode]
        mem = f"{rss[mode] / 2**20:.0f}" if rss[mode] else ""
        print(f"{label:<22}{best[mode]:>10.2f}{gib / best[mode]:>10.2f}{ratio:>12.2f}x{mem:>14}")
    for mode in ("tensor", "raw"):
        ratio, synced = best["cp -r"] / best[mode], best["cp+sync"] / best[mode]
        print(f"{labels[mode]}: throughput {ratio:.2f}x cp -r (target >= 0.5x) {'PASS' if ratio >= 0.5 else 'FAIL'}, "
              f"{synced:.2f}x cp -r + sync; peak RSS {rss[mode] / 2**20:.0f} MiB (target <= 1024) "
              f"{'PASS' if rss[mode] <= 2**30 else 'FAIL'}")

if __name__ == "__main__":
    main()
