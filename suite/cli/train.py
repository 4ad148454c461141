"""`growbench train`: continual pre-training from a YAML config, with a live progress line and metrics.jsonl; or, with
--plan-memory, the memory plan of the config on N GPUs, without weights.

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

from suite.cli.console import console

if TYPE_CHECKING:
    from training.config import TrainConfig


def _plan_memory(cfg: TrainConfig, model_config: Path | None, gpus: str, gpu_memory: str) -> None:
    """--plan-memory: the planner's table for each GPU count, and distributed Muon's traffic, from the config alone."""
    from rich.table import Table

    from growth.foundation.errors import ConfigError
    from growth.foundation.units import gib, parse_bytes
    from growth.grow import read_config_file
    from training.distributed_muon import communication_bytes
    from training.memory_plan import muon_shapes, plan_memory

    if model_config is None and not (cfg.path(cfg.model) / "config.json").is_file():
        raise ConfigError(f"no config.json at {cfg.model}; give the model's config with --model-config CONFIG_JSON "
                          f"(e.g. the grown config `growbench grow --dry-run` prints)")
    config = read_config_file(model_config or cfg.path(cfg.model))
    try:
        worlds = [int(g) for g in gpus.split(",")]
    except ValueError:
        raise ConfigError(f"--gpus takes a number or a comma-separated list, got {gpus!r}") from None
    if any(w < 1 for w in worlds):
        raise ConfigError(f"--gpus must be positive, got {gpus!r}")
    budget = parse_bytes(gpu_memory)
    plans = [plan_memory(config, cfg, w, "cuda", budget) for w in worlds]
    table = Table(title=f"memory per GPU: {config.get('num_hidden_layers')} layers, hidden {config.get('hidden_size')}, "
                        f"seq_len {cfg.seq_len} x micro_batch {cfg.micro_batch}, {plans[0].dtype}")
    table.add_column("")
    for w in worlds:
        table.add_column(f"{w} GPUs", justify="right")
    for i, (label, _) in enumerate(plans[0].rows()):
        table.add_row(label, *(gib(p.rows()[i][1]) for p in plans))
    table.add_row(f"fits in {gib(budget)}", *("yes" if p.fits else "NO" for p in plans))
    table.add_row("peak during", *(p.peak_phase for p in plans))
    console.print(table)
    if cfg.optimizer.muon:
        shapes = muon_shapes(config, cfg.optimizer)
        ns_bytes = cfg.optimizer.newton_schulz_dtype("cuda").itemsize
        for w in worlds:
            c = communication_bytes(shapes, w, ns_bytes)
            console.print(f"Muon per step on {w} GPUs: owner {c['owner_bytes'] / 1e9:.2f} GB sent per GPU, "
                          f"{c['owner_flops'] / 1e12:.1f} TFLOP Newton-Schulz per GPU; gather "
                          f"{c['gather_bytes'] / 1e9:.1f} GB received, {c['gather_flops'] / 1e12:.0f} TFLOP per GPU",
                          markup=False, highlight=False)
    _plan_data(cfg, config, worlds)


def _plan_data(cfg: TrainConfig, model_config: dict, worlds: list[int]) -> None:
    """--plan-memory: the planned GPU step time per GPU count, and a note when the on-the-fly data path cannot keep
    up with it (training.loader.on_the_fly_note)."""
    from training.loader import on_the_fly_note, uses_prepared
    from training.mixture import resolve_stages
    from training.throughput import H100_BF16_PEAK, PLANNED_MFU, planned_step_seconds

    peak = cfg.peak_tflops * 1e12 if cfg.peak_tflops else H100_BF16_PEAK
    prepared = uses_prepared(resolve_stages(cfg.data.mixtures, cfg.data.sources, inputs=False), cfg.data)
    for w in worlds:
        step_s = planned_step_seconds(model_config, cfg.seq_len, cfg.tokens_per_step, w, peak)
        console.print(f"step on {w} GPUs: ~{step_s:.1f} s of GPU time at {PLANNED_MFU:.0%} MFU of "
                      f"{peak / 1e12:.0f} TFLOP/s", markup=False, highlight=False)
        note = None if prepared else on_the_fly_note(cfg.tokens_per_step, w, step_s)
        if note:
            console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def train(config: str = typer.Option(..., "--config", help="Train config: a shipped name (training/configs/) or a "
                                    "YAML file."),
          resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint."),
          model: str | None = typer.Option(None, help="Override the config's model path."),
          run_dir: str | None = typer.Option(None, help="Override the config's run_dir."),
          max_steps: int | None = typer.Option(None, help="Override the config's max_steps."),
          plan_memory: bool = typer.Option(False, "--plan-memory",
                                           help="Print the per-GPU memory plan and exit; loads no weights."),
          gpus: str = typer.Option("8", help="With --plan-memory: GPUs in the run (or a list: 64,128,256)."),
          gpu_memory: str = typer.Option("80GiB", help="With --plan-memory: memory of one GPU."),
          model_config: Path | None = typer.Option(None, help="With --plan-memory: the model's config.json, when "
                                                  "the config's model is not on this machine.")) -> None:
    """Continue pre-training a checkpoint with Muon on a data mixture; writes HF checkpoints per N steps."""
    from training.config import load_config

    overrides = {"model": model, "run_dir": run_dir, "max_steps": max_steps}
    cfg = load_config(config, overrides)
    if plan_memory:
        _plan_memory(cfg, model_config, gpus, gpu_memory)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers.utils import logging as hf_logging

    from training.trainer import train as run_training

    lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 speaks
    for key, value in overrides.items():
        if value is not None and lead:
            console.print(f"override {key} = {value}", markup=False, highlight=False)
    hf_logging.disable_progress_bar()  # the rich bar is the progress display
    columns = (TextColumn("step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False, disable=not lead) as bar:
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
