"""`growbench report OUT.html`: the report page of a training run (results/report.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from suite.cli import options


def report(out: Path = typer.Argument(..., help="The HTML file to write (self-contained, opens offline)."),
           run: Optional[str] = typer.Option(None, "--run", help="Training run: its id (models.training_run) or its "
                                             "folder; default: the most recently registered run."),
           suite: Optional[str] = typer.Option(None, "--suite", help="Suite whose runs count; default: the one the "
                                               "run's checkpoints were evaluated in."),
           reported: Optional[str] = typer.Option(None, "--reported", help="Reported set (results/reported/NAME.yaml "
                                                  "or a path) beside the measured models and as regression "
                                                  "reference; used when its suite matches."),
           pick: str = options.PICK, db: Optional[Path] = options.DB) -> None:
    """One HTML page: leaderboard, score-vs-step and training curves, lineage and regression table."""
    from results.report import ReportOptions, write_report
    from suite.store import Store

    options.out_file(out, "OUT", ".html", ".htm")
    path = write_report(Store(db), out, ReportOptions(run=run, suite=suite, reported=reported, pick=pick))
    typer.echo(f"report: {path}")


def register(app: typer.Typer) -> None:
    app.command()(report)
