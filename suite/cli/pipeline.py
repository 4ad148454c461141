"""`growbench pipeline`: the whole chain from one config, planned (suite/pipeline/plan.py), then executed
(suite/pipeline/execute.py)."""

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
    from suite.pipeline.execute import run_pipeline, summary
    from suite.pipeline.plan import describe, plan_pipeline
    from suite.store import Store

    plan = plan_pipeline(load_pipeline(config), workdir, resolve_data_dir(data_dir))
    if dry_run:
        typer.echo("\n".join(describe(plan)))
        return
    store = Store(db)
    out = run_pipeline(plan, store, start=start, only=only, verbose=bool((ctx.obj or {}).get("verbose")))
    for line in summary(out, store):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command()(pipeline)
