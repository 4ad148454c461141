"""`growbench ingest RESULTS_JSON... --model PATH_OR_NAME`: lm-eval's own result files into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from suite.cli import options
from suite.cli.console import console
from suite.cli.library_log import library_output


def ingest(files: list[Path] = typer.Argument(..., help="lm-eval results_*.json files (samples_*.jsonl beside "
                                              "them are read too)."),
           model: str = typer.Option(..., "--model", help="The model they score: a checkpoint folder, a model in "
                                     "the store, or a name (e.g. Qwen/Qwen3-4B-Base)."),
           suite: Optional[str] = typer.Option(None, "--suite", help="Suite to import into (a name or suite "
                                               "YAML); default: the store's suite when it holds runs of exactly "
                                               "one, else openseek-mid-v1."),
           db: Optional[Path] = options.DB) -> None:
    """Import lm-eval results (scores, samples, task configs) as finished runs of the suite's benchmarks."""
    from rich.table import Table

    from suite.eval.benchmarks import DEFAULT_SUITE
    from suite.eval.ingest import ingest as run_ingest
    from suite.store import Store
    from suite.store.names import model_labels
    from suite.store.queries import finished_suites

    store = Store(db)
    if suite is None and store.path.exists():
        with store.connect(read_only=True) as con:
            held = finished_suites(con)
        suite = held[0] if len(held) == 1 else None
    with library_output("ingest", db):
        report = run_ingest(list(files), model, suite=suite or DEFAULT_SUITE, store=store)
    table = Table("file", "benchmark", "run", "settings")
    for file, benchmark, run_id, deviation in report.imported:
        table.add_row(Path(file).name, benchmark, run_id or "[dim]imported before[/]",
                      f"[yellow]differ: {deviation}[/]" if deviation else "as the suite")
    console.print(table)
    for file, tasks in report.unused.items():
        console.print(f"{Path(file).name}: not in the suite, left out: {', '.join(tasks)}", soft_wrap=True)
    name = model_labels(store, [report.model_id], distinct_in_store=True)[report.model_id]
    console.print(f"model {name}; database: {store.path}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
