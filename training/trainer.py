"""The continual pre-training loop: Muon + AdamW, packed mixture batches, warmup-cosine lr, checkpoints, resume.

    growbench train --config training/configs/tiny.yaml            # one process (CPU or one GPU)
    torchrun --nproc-per-node 2 -m suite.cli train --config FILE   # FSDP2 (fully_shard), gloo on CPU, nccl on GPU

`train(config)` is the library entry the CLI and the pipeline call; it returns the HF exports of the run. Everything
the user can get wrong (model path, context length, data sources, batch split) is checked before weights load.
Under torchrun each decoder layer and then the root are wrapped with `fully_shard`; the model code knows nothing of
it. Each step draws `global_batch` sequences, every rank keeps its slice and accumulates `micro_batch` at a time.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml

from growth.checkpoint import Checkpoint
from growth.foundation.atomic import write_text
from growth.foundation.config import as_dict
from growth.foundation.errors import ConfigError
from training import checkpointing
from training.config import TrainConfig
from training.data import MixtureLoader
from training.metrics import append_metrics, truncate_metrics
from training.mixture import Stage, resolve_stages
from training.param_groups import build_optimizers, set_lr
from training.schedule import lr_factor

ProgressFn = Callable[[dict[str, Any], int], None]


def _setup_distributed() -> tuple[int, int, torch.device, bool]:
    """(rank, world, device, started_here): joins the torchrun process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    started = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        started = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device, started


def _shard(model: torch.nn.Module, device: torch.device, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (world,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)


def stage_steps(stages: list[Stage], tokens_per_step: int) -> list[int]:
    """Cumulative step at which each stage's token budget is spent."""
    ends, total = [], 0
    for st in stages:
        total += math.ceil(st.tokens / tokens_per_step)
        ends.append(total)
    return ends


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _check(config: TrainConfig, world: int) -> tuple[Checkpoint, list[Stage]]:
    """Everything that can be wrong with the inputs, before any weights load."""
    parent = Checkpoint.open(config.path(config.model))
    context = parent.config.get("max_position_embeddings")
    if context is not None and config.seq_len > context:
        raise ConfigError(f"seq_len {config.seq_len} exceeds the model's context ({context} positions, "
                          f"max_position_embeddings in {parent.path}/config.json); lower seq_len")
    config.accumulation(world)
    return parent, resolve_stages(config.data.mixtures, config.data.sources)


def train(config: TrainConfig, run_dir: str | Path | None = None, resume: bool = False,
          progress: ProgressFn | None = None) -> list[Path]:
    """Train per `config`; returns the run's HF exports (RUN/checkpoints/step-*), oldest first."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rank, world, device, started = _setup_distributed()
    run = config.path(run_dir or config.run_dir).absolute()
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        parent, stages = _check(config, world)
        has_state = any((run / "state").glob("step-*"))
        if has_state and not resume:
            raise ConfigError(f"run folder {run} already has training state; pass --resume to continue it "
                              f"or choose another run_dir")
        accum = config.accumulation(world)
        ends = stage_steps(stages, config.tokens_per_step)
        total = min(ends[-1], config.max_steps or ends[-1])
        run_id = config.run_id or run.name

        torch.manual_seed(config.data.seed)
        tokenizer = AutoTokenizer.from_pretrained(str(parent.path))
        model = AutoModelForCausalLM.from_pretrained(str(parent.path), dtype=torch.float32)
        model.train()
        if world > 1:
            _shard(model, device, world)  # fully_shard moves each rank's shards to the mesh device
        else:
            model.to(device)
        optimizers = build_optimizers(model, config.optimizer)
        loader = MixtureLoader(stages, tokenizer, config.seq_len, config.data.seed)

        step = tokens = 0
        found = checkpointing.find_resumable(run) if resume else None
        if found:
            path, state = found
            checkpointing.load_state(path, model, optimizers, state)
            loader.load_state_dict(state["data"])
            step, tokens = state["step"], state["tokens"]
        if rank == 0:
            truncate_metrics(run, step)  # also clears the log of an earlier attempt that saved no state
            write_text(run / "config.yaml", yaml.safe_dump(as_dict(config), sort_keys=False))

        fingerprint = parent.fingerprint()

        def training_record(stage: int) -> dict[str, Any]:
            return {"run_id": run_id, "step": step, "tokens": tokens, "stage": stages[stage].name,
                    "parent_fingerprint": fingerprint, "parent_path": str(parent.path),
                    "config": as_dict(config), "tokens_by_source": loader.tokens_by_source()}

        def checkpoint(stage: int) -> None:
            state = {"step": step, "tokens": tokens, "stage": stage, "data": loader.state_dict()}
            checkpointing.save_state(run, step, model, optimizers, state, config.checkpoint.keep_states)
            checkpointing.export_hf(run, step, model, parent, training_record(stage), config.checkpoint.export_dtype)

        if found and step > 0 and not (run / "checkpoints" / checkpointing.step_name(step)).exists():
            checkpointing.export_hf(run, step, model, parent, training_record(found[1]["stage"]),
                                    config.checkpoint.export_dtype)

        per_rank = config.global_batch // world
        while step < total:
            t0 = time.perf_counter()
            stage = next(i for i, end in enumerate(ends) if step < end)
            lr = lr_factor(step, total, config.schedule) * config.optimizer.lr
            set_lr(optimizers, lr / config.optimizer.lr)
            batch = loader.batch(stage, config.global_batch)[rank * per_rank:(rank + 1) * per_rank]
            loss_sum = torch.zeros((), device=device)
            for i in range(accum):
                if world > 1:
                    model.set_requires_gradient_sync(i == accum - 1)
                x = batch[i * config.micro_batch:(i + 1) * config.micro_batch].to(device)
                with _autocast(config.precision, device):
                    loss = model(input_ids=x, labels=x).loss
                (loss / accum).backward()
                loss_sum += loss.detach().float()
            loss_mean = loss_sum / accum
            if world > 1:
                dist.all_reduce(loss_mean, op=dist.ReduceOp.AVG)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or float("inf"))
            if hasattr(grad_norm, "full_tensor"):
                grad_norm = grad_norm.full_tensor()
            for opt in optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)
            step += 1
            tokens += config.tokens_per_step
            row = {"step": step, "tokens": tokens, "stage": stages[stage].name, "loss": loss_mean.item(),
                   "lr": lr, "grad_norm": grad_norm.item(),
                   "tokens_per_s": config.tokens_per_step / (time.perf_counter() - t0)}
            if rank == 0 and (step % config.log_every == 0 or step == total):
                append_metrics(run, row)
                if progress:
                    progress(row, total)
            if step % config.checkpoint.every == 0 or step == total:
                checkpoint(stage)
        return sorted(p for p in (run / "checkpoints").glob("step-*") if p.is_dir())
    finally:
        if started:
            dist.destroy_process_group()
