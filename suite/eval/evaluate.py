"""Evaluate checkpoints on a suite with lm-eval and record every run in the DuckDB store.

    from suite.eval.evaluate import evaluate
    evaluate("runs/a/checkpoints/step-000100", benchmarks=["arc_challenge"], limit=20, data_dir="../shared/benchmarks")

An `Evaluator` is prepared once per job (suite, verified tasks, engine settings, config hashes) and then scores
checkpoints one at a time. Per checkpoint it claims every pending benchmark in one transaction (`plan`), so one
process owns the checkpoint and loads ONE engine for all of them; the engine work itself is suite/eval/engine_run.py
(which touches no store, so a worker process or a Ray task can do it) and the rows come back to `record`. While the
Evaluator is open, a heartbeat keeps its claims alive (suite/store/claims.py). A benchmark already finished for this
model under the same config hash is skipped; a failing benchmark is recorded (status failed, its first line in
`error` and the full traceback beside it) and the next one runs. The config hash covers what can move a score: the benchmark spec and version, lm-eval's version, the data file
contents (or "hub"), users' task files, backend, dtype, limit, seed and the hashed engine settings (max_model_len,
quantization, ...; suite/eval/engine_settings.py); speed settings (parallelism, memory, prefix caching) stay out.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from growth.checkpoint import Checkpoint
from growth.dtype import config_dtype, dtype_name
from growth.foundation.errors import CheckpointError
from suite.eval.benchmarks import Benchmark
from suite.eval.engine_run import EngineRunner, Job, Outcome
from suite.eval.options import EvalOptions
from suite.store import Store
from suite.store.claims import Heartbeat, JobSpec, claim_checkpoint

__all__ = ["BenchmarkResult", "EvalOptions", "Evaluator", "config_hash", "evaluate", "resolve_dtype"]


@dataclass
class BenchmarkResult:
    model: str
    benchmark: str
    status: str  # finished | skipped (already finished) | failed | unavailable (no local data) | busy (elsewhere)
    score: float | None = None
    stderr: float | None = None
    n: int | None = None
    run_id: str | None = None
    error: str | None = None


Progress = Callable[[BenchmarkResult | str], None]


@dataclass
class Plan:
    """One checkpoint after claiming: results known without running (skipped, busy, unavailable) and the job."""

    results: list[BenchmarkResult]
    job: Job | None


@dataclass
class Evaluator:
    """One job's prepared state; `run(path)` scores one checkpoint. Use as a context manager (heartbeat, temp files)."""

    options: EvalOptions
    store: Store
    engine_loads: int = 0
    _heartbeat: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.options.dtype != "auto":
            dtype_name(self.options.dtype)  # an unknown dtype is one line before anything is stored
        self.runner = EngineRunner(self.options)
        self.backend, self.suite, self.engine = self.runner.backend, self.runner.suite, self.runner.engine
        self.benchmarks: list[Benchmark] = self.runner.benchmarks
        self.lm_eval_version = version("lm_eval")

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._heartbeat is not None:
            self._heartbeat.__exit__(*exc)
        self.runner.close()

    def config(self, benchmark: Benchmark, dtype: str) -> tuple[str, dict[str, Any]]:
        """(config hash, config JSON): the hashed part decides skipping; data_dir and speed settings are recorded."""
        hashed = {"suite": self.suite.name, "benchmark": benchmark.spec(), "lm_eval": self.lm_eval_version,
                  "inputs": self.runner.source.fingerprint(benchmark.key), "backend": self.backend, "dtype": dtype,
                  "limit": self.options.limit, "seed": self.options.seed}
        if self.engine.hashed():
            hashed["engine"] = self.engine.hashed()
        digest = config_hash(hashed)
        return digest, {**hashed, "data_dir": str(self.options.data_dir) if self.options.data_dir else None,
                        "batch_size": self.options.batch_size, "engine_settings": self.engine.changed(),
                        **({"sandbox": self.runner.sandbox} if benchmark.code else {})}

    def plan(self, path: str | Path, model_id: str | None = None) -> Plan:
        """Register the checkpoint and claim all its pending benchmarks in one transaction."""
        ckpt = Checkpoint.open(path)
        model_id = model_id or self.store.register_model(ckpt.path)
        dtype = resolve_dtype(self.options.dtype, ckpt)
        results, specs = [], []
        for b in self.benchmarks:
            plan = self.runner.source.plans[b.key]
            if not plan.available:
                results.append(BenchmarkResult(model_id, b.key, "unavailable", error=plan.unavailable))
                continue
            config_hash, config = self.config(b, dtype)
            specs.append(JobSpec(b.key, config_hash, config, dict(
                suite=self.suite.name, lm_eval_version=self.lm_eval_version, backend=self.backend, dtype=dtype,
                limit=self.options.limit, num_fewshot=b.num_fewshot, seed=self.options.seed)))
        claims = claim_checkpoint(self.store, model_id, specs, force=self.options.force) if specs else {}
        if self._heartbeat is None and any(status == "run" for status, _ in claims.values()):
            self._heartbeat = Heartbeat(self.store).__enter__()  # from the first claim until the Evaluator closes
        runs = []
        for key, (status, ref) in claims.items():
            if status == "finished":
                results.append(self._skipped(model_id, key, ref))
            elif status == "busy":
                results.append(BenchmarkResult(model_id, key, "busy", error=f"being evaluated by {ref}"))
            else:
                runs.append((key, ref))
        job = Job(str(ckpt.path), model_id, dtype, tuple(runs)) if runs else None
        return Plan(results, job)

    def record(self, job: Job, outcome: Outcome) -> BenchmarkResult:
        """Write one benchmark's outcome (scores and samples, or its error) to the store."""
        model_id = job.model_id
        if outcome.unavailable:  # the source lacks what the benchmark needs: reported, never scored
            self.store.fail_run(outcome.run_id, outcome.error or "unavailable")
            return BenchmarkResult(model_id, outcome.benchmark, "unavailable", run_id=outcome.run_id,
                                   error=outcome.error)
        if outcome.error is not None or outcome.rows is None:
            error = outcome.error or "no result"
            kept = self.store.fail_run(outcome.run_id, error, outcome.traceback)
            return BenchmarkResult(model_id, outcome.benchmark, "failed" if kept else "busy", run_id=outcome.run_id,
                                   error=error if kept else _TAKEN_OVER)
        if not self.store.finish_run(outcome.run_id, outcome.rows, outcome.samples, outcome.sample_scores):
            return BenchmarkResult(model_id, outcome.benchmark, "busy", run_id=outcome.run_id, error=_TAKEN_OVER)
        primary = next(r for r in outcome.rows if r["is_primary"])
        return BenchmarkResult(model_id, outcome.benchmark, "finished", primary["value"], primary["stderr"],
                               primary["n"], outcome.run_id)

    def fail(self, job: Job, error: str) -> list[BenchmarkResult]:
        """Record every run of a job as failed (its worker died and the retries are spent)."""
        return [self.record(job, Outcome(key, run_id, error=error)) for key, run_id in job.runs]

    def run(self, path: str | Path, progress: Progress | None = None, model_id: str | None = None) -> list[BenchmarkResult]:
        """Score one checkpoint on every selected benchmark in this process; one engine for all of them."""
        notify = progress or (lambda _: None)
        plan = self.plan(path, model_id)
        for r in plan.results:
            notify(r)
        results = list(plan.results)
        if plan.job is not None:
            job = plan.job

            def on_outcome(outcome: Outcome) -> None:
                results.append(self.record(job, outcome))
                notify(results[-1])

            self.engine_loads += self.runner.run(job, on_start=notify, on_outcome=on_outcome).engine_loads
        return self.ordered(results)

    def ordered(self, results: list[BenchmarkResult]) -> list[BenchmarkResult]:
        """Results in the suite's benchmark order (they arrive in the order they finish)."""
        order = {b.key: i for i, b in enumerate(self.benchmarks)}
        return sorted(results, key=lambda r: order[r.benchmark])

    def _skipped(self, model_id: str, key: str, run_id: str) -> BenchmarkResult:
        value, stderr, n = self.store.primary_score(run_id)
        return BenchmarkResult(model_id, key, "skipped", _num(value), _num(stderr), _int(n), run_id)


_TAKEN_OVER = "its claim went stale and was taken over by another process; this result was dropped"


def evaluate(model_path: str | Path, options: EvalOptions | None = None, *, store: Store | None = None,
             progress: Progress | None = None, model_id: str | None = None, **fields: Any) -> list[BenchmarkResult]:
    """Evaluate one checkpoint (see module docstring) with `options`; `fields` are EvalOptions fields, over
    `options` when both are given (`evaluate(path, benchmarks=["piqa"], limit=20)`). `model_id`: the checkpoint's
    id when the caller registered it already, which keeps the row as registered (its kind) instead of
    registering it anew."""
    if not Path(model_path).is_dir():
        raise CheckpointError(f"model {model_path} does not exist (expected a checkpoint folder)")
    opts = replace(options, **fields) if options is not None else EvalOptions(**fields)
    with Evaluator(opts, store or Store()) as evaluator:
        return evaluator.run(model_path, progress, model_id)


def config_hash(hashed: dict[str, Any]) -> str:
    """The 16-hex-digit hash of a run's score-moving settings: equal hashes mean a finished run can be reused."""
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_dtype(requested: str, ckpt: Checkpoint) -> str:
    """`auto` becomes the dtype the checkpoint's config declares (growth.dtype's rule, as transformers loads it;
    the weights' own dtype when it declares none), so the stored dtype says what actually ran."""
    if requested != "auto":
        return dtype_name(requested)
    return config_dtype(ckpt.config, default=dtype_name(ckpt.info(ckpt.names()[0]).dtype))


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _int(value: Any) -> int | None:
    return None if _num(value) is None else int(value)

