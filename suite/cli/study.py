"""`growbench study`: arms against arms at equal tokens, from one config, planned (suite/study/plan.py), then
executed (suite/study/execute.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from suite.cli import options


def study(ctx: typer.Context,
          config: str = typer.Option("tiny", "--config", help="Shipped study name (tiny, qwen3-0.6b-card) or a "
                                     "study YAML file."),
          workdir: Optional[Path] = typer.Option(None, help="Where the seed, the data and every arm go (default "
                                                 "runs/study-<config name>)."),
          shard: Optional[str] = typer.Option(None, "--shard", help="i/N: run arms i, i+N, ... only (one task of "
                                              "a job array; give each shard its own --db and `growbench db merge` "
                                              "them); the page is written by a run without --shard."),
          setup: bool = typer.Option(False, "--setup", help="Only the seed and the data (run once before the "
                                     "shards)."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; read no weights."),
          db: Optional[Path] = options.DB, data_dir: Optional[Path] = options.DATA_DIR) -> None:
    """Run a growth study: a seed, arms (growth plans, plan overrides, optimizers) and the scratch and
    seed-continued controls on the same data and token budget; held-out loss, tokens-to-target, FLOPs, benchmark
    scores, paired verdicts and one page."""
    from growth.foundation.settings import data_dir as resolve_data_dir
    from suite.eval.sweep import parse_shard
    from suite.store import Store
    from suite.study.config import load_study
    from suite.study.execute import run_study
    from suite.study.plan import describe, plan_study

    shards = parse_shard(shard)[1]
    plan = plan_study(load_study(config), workdir, resolve_data_dir(data_dir))
    if dry_run:
        typer.echo("\n".join(describe(plan, shards)))
        return
    store = Store(db)
    out = run_study(plan, store, shard=shard, setup=setup, verbose=bool((ctx.obj or {}).get("verbose")))
    for line in out.get("lines", []):
        typer.echo(line)
    if "page" in out:
        typer.echo(f"database: {store.path}")
        typer.echo(f"study page: {out['page']}")


def register(app: typer.Typer) -> None:
    app.command()(study)
