"""`growbench eval` (one checkpoint) and `growbench sweep` (many, resumable, shardable) on a benchmark suite."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Optional

import typer

from growth.foundation.config import field_docs
from growth.foundation.settings import data_dir as resolve_data_dir
from suite.cli import options
from suite.cli.console import console
from suite.cli.library_log import library_output
from suite.cli.options import Flag
from suite.eval.engine_settings import EngineSettings, parse_engine_args
from suite.eval.options import Distribution, EvalOptions


def _engine_flag(name: str) -> Flag:
    """An engine setting as a flag of its own (help: the first sentence of its EngineSettings docstring)."""
    doc = field_docs(EngineSettings)[name].split(". ")[0].rstrip(".") + "."
    return Flag(type=options.optional(typing.get_type_hints(EngineSettings)[name]), into="engine", help=doc)


EVAL_FLAGS = {"suite": Flag(type=str), "data_dir": Flag(parse=resolve_data_dir), "batch_size": Flag(type=str),
              "benchmarks": Flag(("--benchmarks", "-b"), Optional[list[str]], options.benchmark_keys),
              "engine": Flag(("--engine-arg",), Optional[list[str]], parse_engine_args),
              **{name: _engine_flag(name) for name in ("tensor_parallel_size", "gpu_memory_utilization",
                                                       "max_model_len")}}
"""EvalOptions on the command line: every field a flag (but `seed`), -b, engine settings as KEY=VALUE and the three
that change most often as flags of their own."""


def _table(results: list, store: Any) -> Any:
    """One row per result; models by name (suite/store/names.py)."""
    from rich.table import Table

    from suite.store.names import model_labels

    names = model_labels(store, [r.model for r in results])
    table = Table("model", "benchmark", "status", "score", "n", "run / reason")
    for r in results:
        score = "" if r.score is None else f"{100 * r.score:.2f}" + (f" ± {100 * r.stderr:.2f}" if r.stderr else "")
        style = {"failed": "red", "unavailable": "yellow", "busy": "yellow"}.get(r.status, "")
        table.add_row(names[r.model], r.benchmark, f"[{style}]{r.status}[/]" if style else r.status, score,
                      "" if r.n is None else str(r.n), r.error or r.run_id or "")
    return table


@options.takes(EvalOptions, "opts", skip=("seed",), flags=EVAL_FLAGS)
def eval_(model: Path = typer.Argument(..., help="Checkpoint folder."), db: Optional[Path] = options.DB, *,
          opts: EvalOptions) -> None:
    """Evaluate one checkpoint on a suite; scores go to the DuckDB store (skips finished, same config)."""
    from suite.eval.evaluate import evaluate
    from suite.store import Store

    store = Store(db)
    with library_output("eval", db) as term:
        results = evaluate(model, opts, store=store,
                           progress=lambda e: term.say(f"running {e}") if isinstance(e, str) else None)
    console.print(_table(results, store))
    console.print(f"database: {store.path}")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


@options.takes(Distribution, "distribution", skip=("retries",))
@options.takes(EvalOptions, "opts", skip=("seed",), flags=EVAL_FLAGS)
def sweep(paths: list[str] = typer.Argument(..., help="Checkpoints, run folders, folders of step-* or globs."),
          db: Optional[Path] = options.DB,
          shard: Optional[str] = typer.Option(None, "--shard", help="i/N: this machine's share (0 <= i < N)."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."), *,
          opts: EvalOptions, distribution: Distribution) -> None:
    """Evaluate every checkpoint x benchmark in step order; resumable, shardable, spread over devices or Ray."""
    from suite.eval.sweep import sweep as run_sweep
    from suite.store import Store

    store = Store(db)
    with library_output("sweep", db):
        report = run_sweep(paths, opts, store=store, shard=shard, show_progress=progress, distribution=distribution)
    console.print(_table(report.results, store))
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("finished", "skipped", "failed", "unavailable", "busy")
                       if report.count(s))
    console.print(f"{len(report.checkpoints)} checkpoints, {report.engine_loads} engine loads: {counts}")
    if report.count("failed"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
    app.command()(sweep)
