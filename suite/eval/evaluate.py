"""Evaluate checkpoints on a suite with lm-eval and record every run in the DuckDB store.

    from suite.eval.evaluate import evaluate
    evaluate("runs/a/checkpoints/step-000100", benchmarks=["arc_challenge"], limit=20, data_dir="../shared/benchmarks")

An `Evaluator` is prepared once per job (suite, verified tasks, config hashes) and then scores checkpoints one at a
time: per checkpoint it loads ONE engine (lazily, only if some benchmark is pending) and runs every pending benchmark
on it, each as its own lm-eval call with its own eval_runs row. A benchmark already finished for this model under the
same config hash is skipped. A failing benchmark is recorded (status failed, its first line in `error` and the full
traceback beside it) and the next one runs. With a local mirror the Hugging Face libraries are told to stay offline
for the duration of each checkpoint's evaluation only.
The config hash covers what can move a score: the benchmark spec and version, lm-eval's version, the data file
contents (or "hub"), users' task files, backend, dtype, limit and seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from growth.checkpoint import Checkpoint
from growth.dtype import config_dtype, dtype_name
from growth.foundation.errors import CheckpointError
from growth.foundation.settings import scoped_environ
from suite.eval.backends import BACKENDS, Backend, EngineOptions, default_backend
from suite.eval.benchmarks import Benchmark, load_suite
from suite.eval.scores import sample_rows, sample_scores, score_rows
from suite.eval.tasks import DataUnavailable
from suite.store import Store
from suite.store.claims import claim


@dataclass(frozen=True)
class EvalOptions:
    suite: str | Path = "openseek-mid-v1"
    benchmarks: tuple[str, ...] = ()  # empty: the whole suite
    limit: int | None = None  # documents per lm-eval task (testing only; recorded and hashed)
    backend: str | None = None  # None: vllm when importable, else hf
    data_dir: Path | None = None  # local benchmark mirror; None: the hub
    allow_code_execution: bool = False
    dtype: str = "auto"
    seed: int = 1234
    batch_size: int | str = "auto"
    log_samples: bool = False  # also store full per-sample outputs (responses) in the samples table; per-document
    # metric values are always stored (sample_scores), compactly, for paired comparisons
    force: bool = False  # re-run benchmarks that already have a finished result


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
class Evaluator:
    """One job's prepared state; `run(path)` scores one checkpoint. Use as a context manager (temp task files)."""

    options: EvalOptions
    store: Store
    engine_loads: int = 0
    _source: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from suite.code.metric import require_code_execution

        self.backend = self.options.backend or default_backend()
        BACKENDS.get(self.backend)  # unknown backend -> ConfigError before any work
        self.suite = load_suite(self.options.suite)
        self.benchmarks: list[Benchmark] = self.suite.select(list(self.options.benchmarks))
        self.sandbox: dict[str, Any] | None = None  # the code sandbox's layers, stored with code benchmarks' configs
        for b in self.benchmarks:
            if b.code:
                self.sandbox = require_code_execution(self.options.allow_code_execution, b.key)
        from suite.eval.tasks import TaskSource

        self._source = TaskSource(self.benchmarks, self.options.data_dir)
        self.lm_eval_version = version("lm_eval")

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._source.close()

    def unavailable(self) -> dict[str, str]:
        return {k: p.unavailable for k, p in self._source.plans.items() if p.unavailable}

    def config(self, benchmark: Benchmark, dtype: str) -> tuple[str, dict[str, Any]]:
        """(config hash, config JSON): the hashed part decides skipping; data_dir is recorded, not hashed."""
        hashed = {"suite": self.suite.name, "benchmark": benchmark.spec(), "lm_eval": self.lm_eval_version,
                  "inputs": self._source.fingerprint(benchmark.key), "backend": self.backend, "dtype": dtype,
                  "limit": self.options.limit, "seed": self.options.seed}
        digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
        return digest, {**hashed, "data_dir": str(self.options.data_dir) if self.options.data_dir else None,
                        "batch_size": self.options.batch_size, **({"sandbox": self.sandbox} if benchmark.code else {})}

    def run(self, path: str | Path, progress: Progress | None = None, model_id: str | None = None) -> list[BenchmarkResult]:
        """Score one checkpoint on every selected benchmark; one engine for all of them."""
        offline = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"} if self.options.data_dir is not None else {}
        with scoped_environ(**offline):
            return self._run(path, progress, model_id)

    def _run(self, path: str | Path, progress: Progress | None, model_id: str | None) -> list[BenchmarkResult]:
        notify = progress or (lambda _: None)
        ckpt = Checkpoint.open(path)
        model_id = model_id or self.store.register_model(ckpt.path)
        dtype = resolve_dtype(self.options.dtype, ckpt)
        results, pending = [], []
        for b in self.benchmarks:
            config_hash, config = self.config(b, dtype)
            plan = self._source.plans[b.key]
            if plan.available:
                pending.append((b, config_hash, config))
            else:
                results.append(BenchmarkResult(model_id, b.key, "unavailable", error=plan.unavailable))
                notify(results[-1])
        lm, load_error = None, None
        backend = BACKENDS.get(self.backend)
        try:
            for b, config_hash, config in pending:
                notify(b.key)
                status, ref = claim(self.store, model_id, b.key, config_hash, config, force=self.options.force,
                                    suite=self.suite.name, lm_eval_version=self.lm_eval_version,
                                    backend=self.backend, dtype=dtype, limit=self.options.limit,
                                    num_fewshot=b.num_fewshot, seed=self.options.seed)
                if status == "finished":
                    results.append(self._skipped(model_id, b.key, ref))
                elif status == "busy":
                    results.append(BenchmarkResult(model_id, b.key, "busy", error=f"being evaluated by {ref}"))
                else:
                    if lm is None and load_error is None:
                        try:
                            lm = self._load(backend, ckpt.path, dtype)
                        except Exception as e:  # noqa: BLE001 - every pending benchmark of it fails with this
                            load_error = (f"engine failed to load: {type(e).__name__}: {_first_line(e)}",
                                          traceback.format_exc())
                    if load_error:
                        self.store.fail_run(ref, *load_error)
                        results.append(BenchmarkResult(model_id, b.key, "failed", run_id=ref, error=load_error[0]))
                    else:
                        results.append(self._run_one(lm, model_id, b, ref))
                notify(results[-1])
        finally:
            if lm is not None:
                backend.release(lm)
        order = {b.key: i for i, b in enumerate(self.benchmarks)}
        return sorted(results, key=lambda r: order[r.benchmark])

    def _load(self, backend: Backend, path: Path, dtype: str) -> Any:
        options = EngineOptions(dtype=dtype, batch_size=self.options.batch_size, seed=self.options.seed)
        self.engine_loads += 1
        return backend.load(path, options)

    def _skipped(self, model_id: str, key: str, run_id: str) -> BenchmarkResult:
        value, stderr, n = self.store.primary_score(run_id)
        return BenchmarkResult(model_id, key, "skipped", _num(value), _num(stderr), _int(n), run_id)

    def _run_one(self, lm: Any, model_id: str, b: Benchmark, run_id: str) -> BenchmarkResult:
        try:
            out = self._lm_eval(lm, b)
            rows = score_rows(b, out)
            samples = sample_rows(out) if self.options.log_samples else None
            self.store.finish_run(run_id, rows, samples, sample_scores(b, out))
        except DataUnavailable as e:  # the source lacks what the benchmark needs: reported, never scored
            self.store.fail_run(run_id, _first_line(e))
            return BenchmarkResult(model_id, b.key, "unavailable", run_id=run_id, error=_first_line(e))
        except Exception as e:  # noqa: BLE001 - recorded on the run, and the job carries on
            error = f"{type(e).__name__}: {_first_line(e)}"
            self.store.fail_run(run_id, error, traceback.format_exc())
            return BenchmarkResult(model_id, b.key, "failed", run_id=run_id, error=error)
        primary = next(r for r in rows if r["is_primary"])
        return BenchmarkResult(model_id, b.key, "finished", primary["value"], primary["stderr"], primary["n"], run_id)

    def _lm_eval(self, lm: Any, b: Benchmark) -> dict[str, Any]:
        from lm_eval import simple_evaluate

        if b.code:
            from suite.code.metric import offline_code_eval

            with offline_code_eval():
                tasks = self._source.build(b.key)
        else:
            tasks = self._source.build(b.key)
        s = self.options.seed
        return simple_evaluate(model=lm, tasks=tasks, task_manager=self._source.manager(), num_fewshot=b.num_fewshot,
                               limit=self.options.limit, log_samples=True,
                               random_seed=0, numpy_random_seed=s, torch_random_seed=s, fewshot_random_seed=s,
                               confirm_run_unsafe_code=b.code, bootstrap_iters=100000)


def evaluate(model_path: str | Path, *, suite: str | Path = "openseek-mid-v1", benchmarks: list[str] | None = None,
             limit: int | None = None, backend: str | None = None, data_dir: str | Path | None = None,
             allow_code_execution: bool = False, store: Store | None = None, progress: Progress | None = None,
             **options: Any) -> list[BenchmarkResult]:
    """Evaluate one checkpoint (see module docstring); `options` are further EvalOptions fields."""
    opts = EvalOptions(suite=suite, benchmarks=tuple(benchmarks or ()), limit=limit, backend=backend,
                       data_dir=Path(data_dir) if data_dir else None, allow_code_execution=allow_code_execution,
                       **options)
    return evaluate_with(model_path, opts, store or Store(), progress)


def evaluate_with(model_path: str | Path, options: EvalOptions, store: Store,
                  progress: Progress | None = None) -> list[BenchmarkResult]:
    """Evaluate one checkpoint with prepared options (what `growbench eval` calls)."""
    if not Path(model_path).is_dir():
        raise CheckpointError(f"model {model_path} does not exist (expected a checkpoint folder)")
    with Evaluator(options, store) as evaluator:
        return evaluator.run(model_path, progress)


def resolve_dtype(requested: str, ckpt: Checkpoint) -> str:
    """`auto` becomes the dtype the checkpoint's config declares (growth.dtype's rule, as transformers loads it;
    the weights' own dtype when it declares none), so the stored dtype says what actually ran."""
    if requested != "auto":
        return dtype_name(requested)
    return config_dtype(ckpt.config, default=dtype_name(ckpt.info(ckpt.names()[0]).dtype))


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else repr(e)


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _int(value: Any) -> int | None:
    return None if _num(value) is None else int(value)

