"""`growbench eval` (one checkpoint) and `growbench sweep` (many, resumable, shardable) on a benchmark suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from suite.cli import options
from suite.cli.console import console

DTYPE = typer.Option("auto", "--dtype", help="auto (the checkpoint's), float32, bfloat16, float16.")
BATCH = typer.Option("auto", "--batch-size", help="Engine batch size (auto, or a number).")
SAMPLES = typer.Option(False, "--log-samples", help="Also store full per-sample outputs (responses) in the samples "
                       "table; per-document scores are always stored.")
RERUN = typer.Option(False, "--force", help="Re-run benchmarks that already have a finished result.")
ENGINE_ARG = typer.Option(None, "--engine-arg", help="Engine setting KEY=VALUE (repeat): max_num_seqs=64, "
                          "enable_prefix_caching=false, kv_cache_dtype=fp8, or any vLLM engine argument.")
TP = typer.Option(None, "--tensor-parallel-size", help="GPUs per engine (vLLM tensor parallelism).")
GPU_MEM = typer.Option(None, "--gpu-memory-utilization", help="Fraction of each GPU vLLM may use (default 0.9).")
MAX_LEN = typer.Option(None, "--max-model-len", help="Context window in tokens (can move scores: hashed).")


def _options(suite: str, benchmarks: list[str] | None, limit: int | None, backend: str | None,
             data_dir: Path | None, allow_code_execution: bool, dtype: str, batch_size: str, log_samples: bool,
             force: bool, engine_args: list[str] | None, tensor_parallel_size: int | None,
             gpu_memory_utilization: float | None, max_model_len: int | None) -> Any:
    from growth.foundation.settings import data_dir as resolve_data_dir
    from suite.eval.engine_settings import parse_engine_args
    from suite.eval.evaluate import EvalOptions

    keys = tuple(options.benchmark_keys(benchmarks))
    batch: int | str = int(batch_size) if batch_size.isdigit() else batch_size
    engine = parse_engine_args(engine_args)
    named = {"tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
             "max_model_len": max_model_len}
    engine.update({k: v for k, v in named.items() if v is not None})
    return EvalOptions(suite=suite, benchmarks=keys, limit=limit, backend=backend,
                       data_dir=resolve_data_dir(data_dir), allow_code_execution=allow_code_execution, dtype=dtype,
                       batch_size=batch, log_samples=log_samples, force=force, engine=engine)


def _table(results: list) -> Any:
    from rich.table import Table

    table = Table("model", "benchmark", "status", "score", "n", "run / reason")
    for r in results:
        score = "" if r.score is None else f"{100 * r.score:.2f}" + (f" ± {100 * r.stderr:.2f}" if r.stderr else "")
        style = {"failed": "red", "unavailable": "yellow", "busy": "yellow"}.get(r.status, "")
        table.add_row(r.model, r.benchmark, f"[{style}]{r.status}[/]" if style else r.status, score,
                      "" if r.n is None else str(r.n), r.error or r.run_id or "")
    return table


def eval_(model: Path = typer.Argument(..., help="Checkpoint folder."), suite: str = options.SUITE,
          benchmarks: Optional[list[str]] = options.BENCHMARKS, limit: Optional[int] = options.LIMIT,
          backend: Optional[str] = options.BACKEND, data_dir: Optional[Path] = options.DATA_DIR,
          allow_code_execution: bool = options.CODE, db: Optional[Path] = options.DB, dtype: str = DTYPE,
          batch_size: str = BATCH, log_samples: bool = SAMPLES, force: bool = RERUN,
          engine_arg: Optional[list[str]] = ENGINE_ARG, tensor_parallel_size: Optional[int] = TP,
          gpu_memory_utilization: Optional[float] = GPU_MEM, max_model_len: Optional[int] = MAX_LEN) -> None:
    """Evaluate one checkpoint on a suite; scores go to the DuckDB store (skips finished, same config)."""
    from suite.eval.evaluate import evaluate_with
    from suite.store import Store

    opts = _options(suite, benchmarks, limit, backend, data_dir, allow_code_execution, dtype, batch_size,
                    log_samples, force, engine_arg, tensor_parallel_size, gpu_memory_utilization, max_model_len)
    store = Store(db)
    results = evaluate_with(model, opts, store,
                            progress=lambda e: console.print(f"running {e}") if isinstance(e, str) else None)
    console.print(_table(results))
    console.print(f"database: {store.path}")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def sweep(paths: list[str] = typer.Argument(..., help="Checkpoints, run folders, folders of step-* or globs."),
          suite: str = options.SUITE, benchmarks: Optional[list[str]] = options.BENCHMARKS,
          limit: Optional[int] = options.LIMIT, backend: Optional[str] = options.BACKEND,
          data_dir: Optional[Path] = options.DATA_DIR, allow_code_execution: bool = options.CODE,
          db: Optional[Path] = options.DB, dtype: str = DTYPE, batch_size: str = BATCH, log_samples: bool = SAMPLES,
          force: bool = RERUN, engine_arg: Optional[list[str]] = ENGINE_ARG, tensor_parallel_size: Optional[int] = TP,
          gpu_memory_utilization: Optional[float] = GPU_MEM, max_model_len: Optional[int] = MAX_LEN,
          shard: Optional[str] = typer.Option(None, "--shard", help="i/N: this machine's share (0 <= i < N)."),
          workers: Optional[int] = typer.Option(None, "--workers", help="Local worker processes, one engine each "
                                                "(on GPUs: tensor_parallel_size GPUs each)."),
          devices: Optional[str] = typer.Option(None, "--devices", help="GPUs for the local workers, e.g. 0,1,2,3 "
                                                "(one worker per tensor_parallel_size of them)."),
          executor: str = typer.Option("local", "--executor", help="local (this machine) or ray."),
          ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join: auto, "
                                                    "host:port (default: start a local one)."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar.")) -> None:
    """Evaluate every checkpoint x benchmark in step order; resumable, shardable, spread over devices or Ray."""
    from suite.eval.sweep import Distribution
    from suite.eval.sweep import sweep as run_sweep
    from suite.store import Store

    opts = _options(suite, benchmarks, limit, backend, data_dir, allow_code_execution, dtype, batch_size,
                    log_samples, force, engine_arg, tensor_parallel_size, gpu_memory_utilization, max_model_len)
    distribution = Distribution(executor=executor, workers=workers, devices=devices, ray_address=ray_address)
    report = run_sweep(paths, opts, store=Store(db), shard=shard, show_progress=progress, distribution=distribution)
    console.print(_table(report.results))
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("finished", "skipped", "failed", "unavailable", "busy")
                       if report.count(s))
    console.print(f"{len(report.checkpoints)} checkpoints, {report.engine_loads} engine loads: {counts}")
    if report.count("failed"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
    app.command()(sweep)
