"""`growbench db merge OUT SHARD...`: shard stores of a batch array (sweep --shard I/N --db shard-I.duckdb) into one."""

from __future__ import annotations

from pathlib import Path

import typer

from suite.cli.console import console, err_console

db_app = typer.Typer(no_args_is_help=True, help="Maintain results databases (merge shard stores).")


def merge(out: Path = typer.Argument(..., help="The store to merge into (created if absent)."),
          shards: list[Path] = typer.Argument(..., help="Shard stores written by `growbench sweep --shard`.")) -> None:
    """Merge shard stores: models by fingerprint, runs by run_id; idempotent; conflicts reported, never overwritten."""
    from suite.store.shards import merge_stores

    report = merge_stores(out, list(shards))
    added = ", ".join(f"{n} {table}" for table, n in report.added.items() if n) or "nothing new"
    console.print(f"merged {len(report.shards)} shard(s) into {report.out}: added {added}"
                  + (f"; {report.updated} running run(s) brought up to date" if report.updated else ""),
                  soft_wrap=True)
    if report.duplicate_jobs:
        console.print(f"note: {report.duplicate_jobs} job(s) have more than one finished run (overlapping shards?); "
                      "reports count one by their usual rule", soft_wrap=True)
    for conflict in report.conflicts:
        err_console.print(f"conflict: {conflict}", markup=False, highlight=False, soft_wrap=True)
    if report.conflicts:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    db_app.command("merge")(merge)
    app.add_typer(db_app, name="db")
