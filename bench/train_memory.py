"""Peak host memory of 2-process CPU training with gradient accumulation, measured against the memory planner.

    python -m bench.train_memory                       # both runs, ~15 minutes on the shared 2-core VM
    python -m bench.train_memory --runs default --work /tmp/tm   # one run, keeping the model for the next time

The model is the 1.1 GB fp32 synthetic untied Qwen3 of the README's done-when (`growbench fixture tiny --layers 18
--hidden 1024 --ffn 4096 --heads 8 --kv-heads 4 --head-dim 128 --untied`); the config is training/configs/tiny.yaml
with micro_batch 1 (global_batch 8: 4 micro-batches per rank), run as `torchrun --nproc-per-node 2 -m suite.cli train
--max-steps 2` (gloo). Per run: every rank's peak RSS (VmHWM, from RUN/memory.json), the planner's prediction for that
run and phase, measured / planned, and the wall time. Peak RSS does not depend on what else the machine runs; the wall
time does (the VM's 2 cores are shared).

Runs: `default` (the shipped settings: each micro-batch's gradients reduce-scattered into the shards, the chunked loss)
and `baseline` (gradient_sync: last_micro_batch, loss.impl: full: whole fp32 gradients held between micro-batches and
transformers' loss, as before issue 21).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MODEL = {"layers": 18, "hidden": 1024, "ffn": 4096, "heads": 8, "kv_heads": 4, "head_dim": 128, "tied": False}
RUNS = {"default": {}, "baseline": {"gradient_sync": "last_micro_batch", "loss": {"impl": "full"}}}
TARGET_GIB = 2.6


def run(work: Path, model: Path, name: str) -> dict:
    """One torchrun of tiny.yaml with `name`'s settings; the plan and every rank's peak from RUN/memory.json."""
    config = yaml.safe_load((REPO / "training" / "configs" / "tiny.yaml").read_text())
    config.update(model=str(model), run_dir=str(work / f"run-{name}"), micro_batch=1, **RUNS[name])
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "suite.cli",
           "train", "--config", str(path), "--max-steps", "2"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if proc.returncode:
        raise SystemExit(f"run {name} failed:\n{proc.stderr[-3000:]}")
    memory = json.loads((work / f"run-{name}" / "memory.json").read_text())
    return {"name": name, "wall_s": time.perf_counter() - t, "planned": memory["plan_total"],
            "phase": memory["plan"]["peak_phase"], "measured": [r["host"] for r in memory["measured"]]}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--work", type=Path, default=None, help="Keep the model and runs here (default: a temp folder).")
    args = parser.parse_args(argv)
    from growth.fixture import TinySpec, make_tiny

    print(f"host: {os.uname().nodename} ({os.cpu_count()} cpus), load average {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-memory-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = work / "model"
        if not model.exists():
            make_tiny(model, TinySpec(**MODEL))
        print(f"{'run':<10}{'rank peaks (GiB)':>20}{'largest':>9}{'planned':>9}{'meas/plan':>11}  {'planned peak phase':<22}"
              f"{'wall s':>8}")
        for name in args.runs:
            r = run(work, model, name)
            rows.append(r)
            peaks = ", ".join(f"{m / 2**30:.2f}" for m in r["measured"])
            top = max(r["measured"])
            print(f"{name:<10}{peaks:>20}{top / 2**30:>9.2f}{r['planned'] / 2**30:>9.2f}{top / r['planned']:>11.2f}  "
                  f"{r['phase']:<22}{r['wall_s']:>8.0f}")
    if rows:
        best = rows[0]
        print(f"{best['name']}: largest rank {max(best['measured']) / 2**30:.2f} GiB (target <= {TARGET_GIB} GiB), "
              f"within {abs(max(best['measured']) / best['planned'] - 1):.0%} of the planner (target 15%); wall "
              f"times depend on the machine's load (load average now {os.getloadavg()[0]:.1f})")
    return rows


if __name__ == "__main__":
    main()
