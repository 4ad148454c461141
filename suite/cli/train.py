"""`growbench train`: continual pre-training from a YAML config, with a live progress line and metrics.jsonl.

    growbench train --config training/configs/tiny.yaml --model runs/tiny-grown
    torchrun --nproc-per-node 2 -m suite.cli train --config FILE     # FSDP2; progress shows on rank 0
"""

from __future__ import annotations

import typer

from suite.cli.console import console


def train(config: str = typer.Option(..., "--config", help="Train config: a shipped name (training/configs/) or a "
                                    "YAML file."),
          resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint."),
          model: str | None = typer.Option(None, help="Override the config's model path."),
          run_dir: str | None = typer.Option(None, help="Override the config's run_dir."),
          max_steps: int | None = typer.Option(None, help="Override the config's max_steps.")) -> None:
    """Continue pre-training a checkpoint with Muon on a data mixture; writes HF checkpoints per N steps."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers.utils import logging as hf_logging

    from training.config import load_config
    from training.trainer import train as run_training

    overrides = {"model": model, "run_dir": run_dir, "max_steps": max_steps}
    cfg = load_config(config, overrides)
    for key, value in overrides.items():
        if value is not None:
            console.print(f"override {key} = {value}", markup=False, highlight=False)
    hf_logging.disable_progress_bar()  # the rich bar is the progress display
    columns = (TextColumn("step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("train", total=None, info="loading")

        def on_step(row: dict, total: int) -> None:
            info = (f"tokens {row['tokens']:,}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
                    f"{row['tokens_per_s']:,.0f} tok/s  {row['stage']}")
            bar.update(task, completed=row["step"], total=total, info=info)

        exports = run_training(cfg, resume=resume, progress=on_step)
    if exports:
        console.print(f"{len(exports)} checkpoint(s) in {exports[-1].parent}; latest {exports[-1].name}",
                      markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(train)
