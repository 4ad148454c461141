"""A training run's metrics.jsonl: one JSON row per logged step (step, tokens, stage, loss, lr, grad_norm,
tokens_per_s, mfu, data_wait_s, memory_gib; on evaluation steps val_loss {source: loss}, and every
metrics.mixture_every steps mixture {source: realised token share of the stage}). The trainer appends to it (and sends
the same rows to training/sinks.py); the pipeline's summary and the report page read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from growth.foundation.atomic import write_text

FILENAME = "metrics.jsonl"


def read_metrics(run: str | Path) -> list[dict[str, Any]]:
    """Every logged row of the run folder `run`, oldest first; [] when the run has logged nothing yet."""
    path = Path(run) / FILENAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_metrics(run: str | Path, row: dict[str, Any]) -> None:
    with open(Path(run) / FILENAME, "a") as f:
        f.write(json.dumps(row) + "\n")


def truncate_metrics(run: str | Path, step: int) -> None:
    """Drop rows logged after `step` (the state a run resumes from), so the log reads as one uninterrupted run."""
    if (Path(run) / FILENAME).exists():
        rows = [r for r in read_metrics(run) if r["step"] <= step]
        write_text(Path(run) / FILENAME, "".join(json.dumps(r) + "\n" for r in rows))
