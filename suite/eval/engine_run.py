"""Run one checkpoint's claimed benchmarks on ONE engine and return their rows, touching no store.

This is the part of an evaluation that needs the model. It runs the same in the sweeping process, in a worker process
pinned to its devices (suite/eval/workers.py) or in a Ray task on another node (suite/eval/ray_executor.py); the
process that claimed the jobs writes the rows (suite/eval/evaluate.py), so the store has one writer however the work
is spread. The engine loads once per job and serves every benchmark of it; each benchmark is its own lm-eval call,
and a failing one becomes an error outcome while the next one runs.
"""

from __future__ import annotations

import atexit
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growth.foundation.settings import scoped_environ
from suite.eval.backends import BACKENDS, EngineOptions, default_backend
from suite.eval.benchmarks import Benchmark
from suite.eval.engine_settings import resolve_engine
from suite.eval.options import EvalOptions
from suite.eval.scores import sample_rows, sample_scores, score_rows
from suite.eval.tasks import DataUnavailable


@dataclass(frozen=True)
class Job:
    """A checkpoint and the runs claimed for it: what a worker needs, nothing of the store."""

    path: str
    model_id: str
    dtype: str
    runs: tuple[tuple[str, str], ...]  # (benchmark key, run_id) in suite order


@dataclass
class Outcome:
    """One benchmark of a job: its score rows (and samples), or the error that stopped it."""

    benchmark: str
    run_id: str
    rows: list[dict[str, Any]] | None = None
    samples: list[dict[str, Any]] | None = None
    sample_scores: list[dict[str, Any]] | None = None  # per-document metric values (suite/store/samples.py)
    error: str | None = None
    traceback: str | None = None
    unavailable: bool = False  # the data source lacks what the benchmark needs: reported, never scored


@dataclass
class JobResult:
    outcomes: list[Outcome]
    engine_loads: int


class EngineRunner:
    """A suite's benchmarks with their verified lm-eval tasks and engine settings, ready to run jobs."""

    def __init__(self, options: EvalOptions) -> None:
        from suite.sandbox.pass_at_k import require_code_execution

        self.options = options
        self.backend = options.backend or default_backend()
        self._backend = BACKENDS.get(self.backend)  # unknown backend -> ConfigError before any work
        self.suite = options.suite
        self.benchmarks: list[Benchmark] = self.suite.select(list(options.benchmarks))
        self.engine = resolve_engine(self.suite.engine, options.engine, backend=self.backend)
        self.sandbox: dict[str, Any] | None = None  # the code sandbox's layers, stored with code benchmarks' configs
        for b in self.benchmarks:
            if b.code:
                self.sandbox = require_code_execution(options.allow_code_execution, b.key)
        from suite.eval.tasks import TaskSource

        self.source = TaskSource(self.benchmarks, options.data_dir)
        self._by_key = {b.key: b for b in self.benchmarks}

    def close(self) -> None:
        """Remove the lm-eval task files derived for the local mirror (the TaskSource's temp folder)."""
        self.source.close()

    def run(self, job: Job, on_start: Callable[[str], None] | None = None,
            on_outcome: Callable[[Outcome], None] | None = None) -> JobResult:
        """Every claimed benchmark of the job on one engine, loaded when the first one starts. With a local mirror the
        Hugging Face libraries are told to stay offline for the job's duration only."""
        offline = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"} if self.options.data_dir is not None else {}
        with scoped_environ(**offline):
            return self._run(job, on_start, on_outcome)

    def _run(self, job: Job, on_start: Callable[[str], None] | None,
             on_outcome: Callable[[Outcome], None] | None) -> JobResult:
        outcomes: list[Outcome] = []
        lm, load_error, loads = None, None, 0
        try:
            for key, run_id in job.runs:
                if on_start:
                    on_start(key)
                if lm is None and load_error is None:
                    loads += 1
                    try:
                        lm = self.load(Path(job.path), job.dtype)
                    except Exception as e:  # noqa: BLE001 - every benchmark of the job fails with this
                        load_error = (f"engine failed to load: {error_line(e)}",
                                      traceback.format_exc())
                outcome = (Outcome(key, run_id, error=load_error[0], traceback=load_error[1]) if load_error
                           else self._run_one(lm, key, run_id, job.path))
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
        finally:
            if lm is not None:
                self.release(lm)
        return JobResult(outcomes, loads)

    def load(self, path: Path, dtype: str) -> Any:
        """Start the engine on a checkpoint (the backend's `load`, with this runner's settings)."""
        o = self.options
        engine = EngineOptions(dtype=dtype, batch_size=o.batch_size, seed=o.seed, settings=self.engine)
        return self._backend.load(path, engine)

    def release(self, lm: Any) -> None:
        """Free the engine (processes, caches) before the next checkpoint's starts."""
        self._backend.release(lm)

    def _run_one(self, lm: Any, key: str, run_id: str, path: str) -> Outcome:
        b = self._by_key[key]
        try:
            out = self.lm_eval(lm, b)
            if self.options.lm_eval_output is not None:
                write_lm_eval_files(out, self.options.lm_eval_output / Path(path).name)
            return Outcome(key, run_id, score_rows(b, out), sample_rows(out) if self.options.log_samples else None,
                           sample_scores(b, out))
        except DataUnavailable as e:
            return Outcome(key, run_id, error=first_line(e), unavailable=True)
        except Exception as e:  # noqa: BLE001 - recorded on the run, and the job carries on
            return Outcome(key, run_id, error=error_line(e), traceback=traceback.format_exc())

    def lm_eval(self, lm: Any, b: Benchmark) -> dict[str, Any]:
        """One benchmark on a loaded engine: lm-eval's results dict."""
        from lm_eval import simple_evaluate

        if b.code:
            from suite.sandbox.pass_at_k import offline_code_eval

            with offline_code_eval():
                tasks = self.source.build(b.key)
        else:
            tasks = self.source.build(b.key)
        s = self.options.seed
        return simple_evaluate(model=lm, tasks=tasks, task_manager=self.source.manager(), num_fewshot=b.num_fewshot,
                               limit=self.options.limit, log_samples=True,
                               random_seed=0, numpy_random_seed=s, torch_random_seed=s, fewshot_random_seed=s,
                               confirm_run_unsafe_code=b.code, bootstrap_iters=100000)


def write_lm_eval_files(out: dict[str, Any], folder: Path) -> None:
    """lm-eval's own files for one results dict, written by lm-eval's EvaluationTracker as its CLI writes them
    (results_<date>.json, samples_<task>_<date>.jsonl), into a temporary folder and then moved into `folder`, so a
    reader never sees half a file."""
    import os
    import tempfile

    from lm_eval.loggers import EvaluationTracker

    results = dict(out)
    samples = results.pop("samples", {})
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as tmp:
        tracker = EvaluationTracker(output_path=tmp)
        tracker.save_results_aggregated(results=results, samples=samples)
        for task in results.get("configs", {}):
            if task in samples:
                tracker.save_results_samples(task_name=task, samples=samples[task])
        for file in sorted(Path(tmp).rglob("*.json*"), key=lambda f: f.name.startswith("results_")):
            os.replace(file, folder / file.name)  # the samples first: a results file never lacks its samples


_RUNNERS: dict[str, EngineRunner] = {}


def runner_for(options: EvalOptions) -> EngineRunner:
    """This process's EngineRunner for `options`, built once (worker processes and Ray workers run many jobs)."""
    key = repr(options)
    if key not in _RUNNERS:
        if not _RUNNERS:
            atexit.register(lambda: [r.close() for r in _RUNNERS.values()])
        _RUNNERS[key] = EngineRunner(options)
    return _RUNNERS[key]


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its repr when the message is empty)."""
    return str(e).strip().splitlines()[0] if str(e).strip() else repr(e)


def error_line(e: BaseException) -> str:
    """'Type: first line': how a run's one-line `error` names an exception, wherever the job ran."""
    return f"{type(e).__name__}: {first_line(e)}"
