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


def _options(suite: str, benchmarks: list[str] | None, limit: int | None, backend: str | None,
             data_dir: Path | None, allow_code_execution: bool, dtype: str, batch_size: str, log_samples: bool,
             force: bool) -> Any:
    from growth.foundation.settings import data_dir as resolve_data_dir
    from suite.eval.evaluate import EvalOptions

    keys = tuple(k.strip() for item in benchmarks or [] for k in item.split(",") if k.strip())
    batch: int | str = int(batch_size) if batch_size.isdigit() else batch_size
    return EvalOptions(suite=suite, benchmarks=keys, limit=limit, backend=backend,
                       data_dir=resolve_data_dir(data_dir), allow_code_execution=allow_code_execution, dtype=dtype,
                       batch_size=batch, log_samples=log_samples, force=force)


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
          batch_size: str = BATCH, log_samples: bool = SAMPLES, force: bool = RERUN) -> None:
    """Evaluate one checkpoint on a suite; scores go to the DuckDB store (skips finished, same config)."""
    from suite.eval.evaluate import evaluate_with
    from suite.store import Store

    opts = _options(suite, benchmarks, limit, backend, data_dir, allow_code_execution, dtype, batch_size,
                    log_samples, force)
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
          force: bool = RERUN,
          shard: Optional[str] = typer.Option(None, "--shard", help="i/N: this machine's share (0 <= i < N)."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar.")) -> None:
    """Evaluate every checkpoint x benchmark in step order; resumable, shardable, safe to run concurrently."""
    from suite.eval.sweep import sweep as run_sweep
    from suite.store import Store

    opts = _options(suite, benchmarks, limit, backend, data_dir, allow_code_execution, dtype, batch_size,
                    log_samples, force)
    report = run_sweep(paths, opts, store=Store(db), shard=shard, show_progress=progress)
    console.print(_table(report.results))
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("finished", "skipped", "failed", "unavailable", "busy")
                       if report.count(s))
    console.print(f"{len(report.checkpoints)} checkpoints, {report.engine_loads} engine loads: {counts}")
    if report.count("failed"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
    app.command()(sweep)
