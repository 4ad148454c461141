"""Sweep: evaluate many checkpoints (training run folders, step-* folders, globs) on a suite, resumably.

    growbench sweep runs/a 'runs/b/checkpoints/step-*' --data-dir ../shared/benchmarks
    growbench sweep runs/a --devices 0,1,2,3,4,5,6,7          # one worker per GPU (suite/eval/workers.py)
    growbench sweep runs/a --executor ray --ray-address auto  # tasks on a Ray cluster (suite/eval/ray_executor.py)
    growbench sweep runs/a --shard 3/8 --db shard-3.duckdb     # one task of a batch array; `growbench db merge`

Jobs are checkpoint x benchmark, in step order. One engine is loaded per checkpoint and serves all its benchmarks:
the sweeping process claims a checkpoint's jobs together (suite/store/claims.py) just before handing it to a free
worker, and it is the only process that writes the store. Jobs with a finished result under the same config hash are
skipped, so re-running after an interruption (even kill -9) picks up where it stopped; a failing job is recorded
(status failed, error) and the sweep carries on. Several sweeps can share one database on one host: every write is a
short transaction and claims carry heartbeats. `--shard i/N` (0 <= i < N) keeps every N-th checkpoint starting at
the i-th, so N machines split the work and each checkpoint's engine is loaded on one machine only.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from growth.foundation.errors import ConfigError, GrowbenchError
from growth.foundation.terminal import terminal
from suite.eval.engine_run import Job, JobResult
from suite.eval.evaluate import BenchmarkResult, Evaluator, Plan
from suite.eval.options import Distribution, EvalOptions
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
          show_progress: bool = True, distribution: Distribution | None = None) -> SweepReport:
    """Evaluate every checkpoint of this shard on the suite; see the module docstring."""
    index, count = parse_shard(shard)
    checkpoints = find_checkpoints(patterns)[index::count]
    report = SweepReport(checkpoints)
    with Evaluator(options, store or Store()) as evaluator, terminal().progress(enabled=show_progress) as bar:
        # before any claim, so a bad cluster address or device list changes nothing
        executor = _executor(distribution or Distribution(), evaluator)
        progress = _Progress(bar, f"{len(checkpoints)} models x {len(evaluator.benchmarks)} benchmarks",
                             len(checkpoints) * len(evaluator.benchmarks))
        if executor is None:
            _sweep_here(evaluator, checkpoints, report, progress)
        else:
            with executor:
                _sweep_spread(evaluator, executor, checkpoints, report, progress)
        report.engine_loads = evaluator.engine_loads
    return report


class _Progress:
    """The sweep's progress bar, and a line for every job that did not finish."""

    def __init__(self, bar: Any, total: str, jobs: int) -> None:
        self.bar, self.total = bar, total
        self.task = bar.add_task(total, total=jobs)

    def show(self, label: str, results: list[BenchmarkResult]) -> None:
        self.bar.advance(self.task, len(results))
        for r in results:
            if r.status in ("failed", "unavailable", "busy"):
                terminal().say(f"{label} {r.benchmark}: {r.status} ({r.error})")

    def describe(self, text: str) -> None:
        self.bar.update(self.task, description=text)


class JobExecutor(Protocol):
    """What runs jobs away from the sweeping process: the local WorkerPool (suite/eval/workers.py) and the
    RayExecutor (suite/eval/ray_executor.py). Jobs go out with `submit`; results come back through `next_done`."""

    slots: int
    """Jobs worth keeping in flight."""

    @property
    def busy(self) -> int:
        """Jobs submitted and not yet returned by `next_done`."""

    def submit(self, job: Job) -> None:
        """Start a job (needs a free slot)."""

    def next_done(self) -> tuple[Job, JobResult | str]:
        """Wait for a job to end: its result, or the error text that fails all its runs (retries spent)."""

    def __enter__(self) -> JobExecutor: ...

    def __exit__(self, *exc: object) -> None: ...


def _executor(dist: Distribution, evaluator: Evaluator) -> JobExecutor | None:
    if dist.executor == "ray":
        from suite.eval.ray_executor import RayExecutor

        return RayExecutor(evaluator.options, evaluator.engine, address=dist.ray_address, retries=dist.retries)
    from suite.eval.workers import WorkerPool, plan_workers

    groups = plan_workers(dist.workers, dist.devices, evaluator.engine.devices_per_engine, _gpu_count())
    return WorkerPool(evaluator.options, groups, dist.retries) if groups else None


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _label(path: Path) -> str:
    return path.name if step_of(path) is None else f"{path.parent.parent.name}/{path.name}"


def _plan(evaluator: Evaluator, path: Path) -> Plan:
    try:
        return evaluator.plan(path)
    except GrowbenchError as e:  # a broken checkpoint fails its jobs; the sweep goes on
        return Plan(_broken(evaluator, path, e), None)


def _broken(evaluator: Evaluator, path: Path, e: GrowbenchError) -> list[BenchmarkResult]:
    return [BenchmarkResult(str(path), b.key, "failed", error=str(e)) for b in evaluator.benchmarks]


def _sweep_here(evaluator: Evaluator, checkpoints: list[Path], report: SweepReport, progress: _Progress) -> None:
    """One checkpoint after the other in this process, recording each benchmark as it finishes."""
    for path in checkpoints:
        label = _label(path)

        def notify(event: BenchmarkResult | str, label: str = label) -> None:
            if isinstance(event, str):
                progress.describe(f"{label} x {event}")
            else:
                progress.show(label, [event])

        try:
            report.results += evaluator.run(path, notify)
        except GrowbenchError as e:  # a broken checkpoint fails its jobs; the sweep goes on
            failed = _broken(evaluator, path, e)
            report.results += failed
            progress.bar.advance(progress.task, len(failed))
            terminal().say(f"{label}: failed ({e})")


def _sweep_spread(evaluator: Evaluator, executor: JobExecutor, checkpoints: list[Path], report: SweepReport,
                  progress: _Progress) -> None:
    """Claim a checkpoint whenever the executor has a free slot; record each job's rows as they come back (this
    process is the store's only writer)."""
    labels: dict[str, str] = {}
    queue = deque(checkpoints)
    while queue or executor.busy:
        while queue and executor.busy < executor.slots:
            path = queue.popleft()
            label, plan = _label(path), _plan(evaluator, path)
            report.results += plan.results
            progress.show(label, plan.results)
            if plan.job is not None:
                labels[plan.job.path] = label
                executor.submit(plan.job)
                progress.describe(f"{progress.total}, {executor.busy} checkpoints running")
        if executor.busy:
            job, result = executor.next_done()
            if isinstance(result, str):
                results = evaluator.fail(job, result)
            else:
                results = [evaluator.record(job, o) for o in result.outcomes]
                evaluator.engine_loads += result.engine_loads
            report.results += evaluator.ordered(results)
            progress.show(labels[job.path], results)
