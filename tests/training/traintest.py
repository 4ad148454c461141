"""Helpers shared by the training tests: tiny run configs, their losses, the CLI command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# Per-step losses of the 16-step reference run in test_train.py (Muon + AdamW, tiny mixture, tiny_model), with the torch
# and transformers versions, the resolved train config and the model spec they were recorded with: a numerics
# regression check. Regenerate with GROWBENCH_WRITE_GOLDEN=1 after an intended change.
GOLDEN = Path(__file__).parent / "data" / "tiny_muon_losses.json"


def write_config(tmp_path: Path, model: Path, name: str = "run", **over) -> Path:
    """A tiny run: 4 x 32-token sequences per step, 2 per micro-batch, one CPU thread (bit-reproducible)."""
    cfg = {"model": str(model), "run_dir": str(tmp_path / name), "seq_len": 32, "global_batch": 4,
           "micro_batch": 2, "threads": 1, "max_steps": 6,
           "data": {"mixtures": ["tiny"]}, "optimizer": {"lr": 0.003},
           "schedule": {"warmup_steps": 2}, "checkpoint": {"every": 3}}
    for key, value in over.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["loss"] for r in rows]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "suite.cli", *args]


def run_and_kill(config: Path, run: Path, after_steps: int) -> None:
    """Start `growbench train --config CONFIG` and SIGKILL it once metrics.jsonl has `after_steps` rows."""
    proc = subprocess.Popen(cli("train", "--config", str(config)), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            metrics = run / "metrics.jsonl"
            if metrics.exists() and len(metrics.read_text().splitlines()) >= after_steps:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
