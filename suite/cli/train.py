"""`growbench train`: continual pre-training from a YAML config, with a live progress line and metrics.jsonl; or, with
--plan-memory, the memory plan of the config on N GPUs, without weights (exit 1 when it does not fit).

    growbench train --config training/configs/tiny.yaml --model runs/tiny-grown
    torchrun --nproc-per-node 2 -m suite.cli train --config FILE     # FSDP2; progress shows on rank 0
    growbench train --config training/configs/openseek-mid-v1.yaml --plan-memory --gpus 64,128,256 \
        --gpu-memory 80GiB --model-config grown-config.json
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from suite.cli.console import console, err_console
from suite.cli.library_log import library_output

if TYPE_CHECKING:
    from training.config import TrainConfig


def _print_plan(cfg: TrainConfig, model_config: Path | None, gpus: str, gpu_memory: str) -> bool:
    """--plan-memory: the run's plan per GPU count (training.run_plan); whether every count fits."""
    from rich.table import Table

    from growth.foundation.errors import ConfigError
    from growth.foundation.units import parse_bytes
    from training.run_plan import plan_run

    try:
        worlds = [int(g) for g in gpus.split(",")]
    except ValueError:
        raise ConfigError(f"--gpus takes a number or a comma-separated list, got {gpus!r}") from None
    plan = plan_run(cfg, worlds, parse_bytes(gpu_memory), model_config)
    table = Table(title=plan.title)
    table.add_column("")
    for column in plan.columns:
        table.add_column(column, justify="right")
    for label, cells in plan.rows:
        table.add_row(label, *cells)
    console.print(table)
    for line in plan.notes:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return plan.fits


def train(config: str = typer.Option(..., "--config", help="Train config: a shipped name (training/configs/) or a "
                                    "YAML file."),
          resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint."),
          model: str | None = typer.Option(None, help="Override the config's model path."),
          run_dir: str | None = typer.Option(None, help="Override the config's run_dir."),
          max_steps: int | None = typer.Option(None, help="Override the config's max_steps."),
          plan_memory: bool = typer.Option(False, "--plan-memory",
                                           help="Print the per-GPU memory plan and exit (1 if it does not fit); "
                                           "loads no weights."),
          gpus: str = typer.Option("8", help="With --plan-memory: GPUs in the run (or a list: 64,128,256)."),
          gpu_memory: str = typer.Option("80GiB", help="With --plan-memory: memory of one GPU."),
          model_config: Path | None = typer.Option(None, help="With --plan-memory: the model's config.json, when "
                                                  "the config's model is not on this machine.")) -> None:
    """Continue pre-training a checkpoint with Muon on a data mixture; writes HF checkpoints per N steps."""
    from training.config import load_config

    overrides = {"model": model, "run_dir": run_dir, "max_steps": max_steps}
    cfg = load_config(config, overrides)
    if plan_memory:
        if not _print_plan(cfg, model_config, gpus, gpu_memory):
            err_console.print("the plan does not fit the GPU's memory at every count (NO above)", markup=False)
            raise typer.Exit(1)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 speaks
    for key, value in overrides.items():
        if value is not None and lead:
            console.print(f"override {key} = {value}", markup=False, highlight=False)
    columns = (TextColumn("step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())
    with library_output("train") as term:
        from transformers.utils import logging as hf_logging

        from training.trainer import train as run_training

        hf_logging.disable_progress_bar()  # the rich bar is the progress display
        # On the user's stdout, past the capture (rich's own redirection would carry library output with it).
        with Progress(*columns, console=Console(file=term.out), transient=False, disable=not lead,
                      redirect_stdout=False, redirect_stderr=False) as bar:
            task = bar.add_task("train", total=None, info="loading")

            def on_step(row: dict, total: int) -> None:
                info = (f"tokens {row['tokens']:,}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
                        f"{row['tokens_per_s']:,.0f} tok/s  MFU {row['mfu']:.1%}  {row['stage']}")
                bar.update(task, completed=row["step"], total=total, info=info)

            exports = run_training(cfg, resume=resume, progress=on_step)
    if exports and lead:
        console.print(f"{len(exports)} checkpoint(s) in {exports[-1].parent}; latest {exports[-1].name}",
                      markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(train)
