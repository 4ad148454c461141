"""Sweep: evaluate many checkpoints (training run folders, step-* folders, globs) on a suite, resumably.

    growbench sweep runs/a 'runs/b/checkpoints/step-*' --data-dir ../shared/benchmarks --shard 0/2

Jobs are checkpoint x benchmark, in step order. One engine is loaded per checkpoint and serves all its benchmarks.
Jobs with a finished result under the same config hash are skipped, so re-running after an interruption (even
kill -9) picks up where it stopped; a failing job is recorded (status failed, error) and the sweep carries on.
Several sweeps can share one database: every write is a short transaction and each job is claimed before it runs
(suite/store/claims.py). `--shard i/N` (0 <= i < N) keeps every N-th checkpoint starting at the i-th, so N machines split
the work and each checkpoint's engine is loaded on one machine only.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from growth.checkpoint import Checkpoint
from growth.foundation.errors import ConfigError, GrowbenchError
from growth.foundation.terminal import terminal
from suite.eval.evaluate import BenchmarkResult, EvalOptions, Evaluator
from suite.store import Store

_STEP = re.compile(r"step-0*(\d+)")
log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    checkpoints: list[Path]
    results: list[BenchmarkResult] = field(default_factory=list)
    engine_loads: int = 0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' -> (i, N) with 0 <= i < N; None -> (0, 1)."""
    if not text:
        return 0, 1
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ConfigError(f"--shard must be i/N with 0 <= i < N (e.g. 0/4), got {text!r}")
    return int(match[1]), int(match[2])


def _is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file()


def step_of(path: Path) -> int | None:
    """The training step of a checkpoint: training.json's, else the step-N folder name (a corrupt training.json is
    reported, not ignored)."""
    training = path / "training.json"
    if training.is_file():
        try:
            return int(json.loads(training.read_text())["step"])
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s is unreadable (%s: %s); ordering the checkpoint by its folder name", training,
                        type(e).__name__, e)
    match = _STEP.search(path.name)
    return int(match[1]) if match else None


def find_checkpoints(patterns: list[str]) -> list[Path]:
    """Checkpoint folders named by `patterns` (a checkpoint, a run folder, a folder of step-* folders, or a glob),
    complete ones only (temp folders of an unfinished publish are never matched), in step order."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(Path(p) for p in glob.glob(pattern)) if glob.has_magic(pattern) else [Path(pattern)]
        if not matches or not any(m.exists() for m in matches):
            raise ConfigError(f"no checkpoint or folder matches {pattern!r}")
        for m in matches:
            if _is_checkpoint(m):
                found[m.resolve()] = None
                continue
            inner = m / "checkpoints" if (m / "checkpoints").is_dir() else m
            children = [c for c in sorted(inner.iterdir()) if c.is_dir() and not c.name.startswith(".")
                        and _is_checkpoint(c)] if inner.is_dir() else []
            found.update((c.resolve(), None) for c in children)
    if not found:
        raise ConfigError(f"no checkpoints (folders holding config.json) found in {', '.join(patterns)}")
    steps = {p: step_of(p) for p in found}
    return sorted(found, key=lambda p: (steps[p] is None, steps[p] or 0, str(p)))


def sweep(patterns: list[str], options: EvalOptions, *, store: Store | None = None, shard: str | None = None,
          show_progress: bool = True) -> SweepReport:
    """Evaluate every checkpoint of this shard on the suite; see the module docstring."""
    index, count = parse_shard(shard)
    checkpoints = find_checkpoints(patterns)[index::count]
    report = SweepReport(checkpoints)
    term = terminal()
    with Evaluator(options, store or Store()) as evaluator, term.progress(enabled=show_progress) as bar:
        task = bar.add_task(f"{len(checkpoints)} models x {len(evaluator.benchmarks)} benchmarks",
                            total=len(checkpoints) * len(evaluator.benchmarks))
        for path in checkpoints:
            label = path.name if step_of(path) is None else f"{path.parent.parent.name}/{path.name}"

            def notify(event: BenchmarkResult | str, label: str = label) -> None:
                if isinstance(event, str):
                    bar.update(task, description=f"{label} x {event}")
                else:
                    bar.advance(task)
                    if event.status in ("failed", "unavailable", "busy"):
                        term.say(f"{label} {event.benchmark}: {event.status} ({event.error})")

            try:
                Checkpoint.open(path)
                report.results += evaluator.run(path, notify)
            except GrowbenchError as e:  # a broken checkpoint fails its jobs; the sweep goes on
                failed = [BenchmarkResult(str(path), b.key, "failed", error=str(e)) for b in evaluator.benchmarks]
                report.results += failed
                bar.advance(task, len(failed))
                term.say(f"{label}: failed ({e})")
        report.engine_loads = evaluator.engine_loads
    return report

