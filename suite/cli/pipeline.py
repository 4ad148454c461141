"""`growbench pipeline`: the whole chain from one config (see suite/pipeline/runner.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from suite.cli import options


def pipeline(ctx: typer.Context,
             config: str = typer.Option("tiny", "--config", help="Shipped pipeline name (tiny, "
                                        "openseek-mid-v1) or a pipeline YAML file."),
             workdir: Optional[Path] = typer.Option(None, help="Where every step's outputs go "
                                                    "(default runs/<config name>)."),
             start: Optional[str] = typer.Option(None, "--from", help="Redo this step and every later one."),
             only: Optional[str] = typer.Option(None, "--only", help="Run (redo) just this step."),
             dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; read no weights."),
             db: Optional[Path] = options.DB, data_dir: Optional[Path] = options.DATA_DIR) -> None:
    """Run grow -> train -> sweep -> select -> merge -> evaluate -> report; re-runs continue where they stopped."""
    from growth.foundation.settings import data_dir as resolve_data_dir
    from suite.pipeline.config import load_pipeline
    from suite.pipeline.runner import dry_run as plan_run
    from suite.pipeline.runner import run_pipeline
    from suite.store import Store

    cfg = load_pipeline(config)
    mirror = resolve_data_dir(data_dir)
    if dry_run:
        for line in plan_run(cfg, mirror):
            typer.echo(line)
        return
    store = Store(db)
    work = workdir or Path("runs") / cfg.name
    out = run_pipeline(cfg, work, store, data_dir=mirror, start=start, only=only,
                       verbose=bool((ctx.obj or {}).get("verbose")))
    report = out.get("report")
    if report:
        table = [line for line in report["table"].splitlines() if line.startswith("|")]
        typer.echo("\n".join(table) + f"\n(notes under the table: {report['leaderboard']})")
        for line in report.get("precision", []):
            typer.echo("  " + line)
        if "growth_check" in report:
            typer.echo("growth: " + report["growth_check"])
        if "final_vs_seed" in report:
            typer.echo(f"final vs seed, paired over the same documents (points; details: {report['evidence']}):")
            for line in report["final_vs_seed"]:
                typer.echo("  " + line)
        typer.echo(f"database: {store.path}")
        typer.echo(f"final model: {out['build']['path']}")
        plots = [report[k] for k in ("run_plot", "compare_plot") if k in report]
        typer.echo(f"leaderboard: {report['leaderboard']}; plots: {', '.join(plots)}")
        if "regress" in report:
            typer.echo(f"regress vs reported: {report['regress']['json']}")
        if "page" in report:
            typer.echo(f"report: {report['page']}")


def register(app: typer.Typer) -> None:
    app.command()(pipeline)
