"""The continual pre-training loop: Muon + AdamW, packed mixture batches, warmup-cosine lr, checkpoints, resume.

    growbench train --config training/configs/tiny.yaml            # one process (CPU or one GPU)
    torchrun --nproc-per-node 2 -m suite.cli train --config FILE   # FSDP2 (fully_shard), gloo on CPU, nccl on GPU

`train(config)` is the library entry the CLI and the pipeline call; it returns the HF exports of the run. Everything
the user can get wrong (model path, context length, data sources, batch split, memory) is checked before weights
load. The model is built on the meta device, parallelised (training.parallel: the chunked loss head, activation
checkpointing, compile, FSDP2 with mixed precision) and filled shard by shard from the safetensors files
(training.loading); the model code knows nothing of it. Each step asks the loader (training.loader) for this rank's
share of the step's `global_batch` sequences, read from prepared data or packed on the fly, and accumulates
`micro_batch` at a time, reduce-scattering each micro-batch's gradients into the sharded ones (`gradient_sync`).
Every logged step carries tokens/s, MFU (training.throughput) and the time the loop waited for data; with prepared
data, the held-out loss per source every `data.validation.every` steps (training.validation) and the realised
mixture shares. Rows go to metrics.jsonl and the configured sinks (training.sinks: TensorBoard, W&B). RUN/memory.json
holds the memory plan and each rank's measured peak.
"""

from __future__ import annotations

import dataclasses
import logging
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
from growth.foundation.atomic import write_json, write_text
from growth.foundation.config import as_dict
from growth.foundation.errors import ConfigError
from training import checkpointing
from training.config import TrainConfig
from training.host_memory import fix_mmap_threshold
from training.loader import (
    Batches,
    Prefetcher,
    build_loader,
    on_the_fly_note,
    open_sources,
    stage_of,
    uses_prepared,
    validation_sequences,
)
from training.loading import build_meta_model, load_weights, materialize
from training.loss import check_loss
from training.memory_plan import MemoryPlan, check_fits, device_budget
from training.metrics import append_metrics, truncate_metrics
from training.mixture import Stage, resolve_stages
from training.parallel import Parallelism, parallelize, setup_distributed
from training.param_groups import build_optimizers, set_lr
from training.prepared import PreparedSource
from training.schedule import lr_factor
from training.sinks import Sinks
from training.throughput import flops_per_token, measure_peak_flops, mfu, planned_step_seconds
from training.validation import held_out_loss

ProgressFn = Callable[[dict[str, Any], int], None]
log = logging.getLogger(__name__)


def stage_steps(stages: list[Stage], tokens_per_step: int) -> list[int]:
    """Cumulative step at which each stage's token budget is spent."""
    ends, total = [], 0
    for st in stages:
        total += math.ceil(st.tokens / tokens_per_step)
        ends.append(total)
    return ends


def _check(config: TrainConfig, world: int, device: torch.device
           ) -> tuple[Checkpoint, list[Stage], MemoryPlan, Any, dict[str, PreparedSource] | None]:
    """Everything that can be wrong with the inputs, before any weights load: the model, the batch split, the data
    (prepared data's manifest, tokenizer and files), the memory plan against the device."""
    from transformers import AutoTokenizer

    parent = Checkpoint.open(config.path(config.model))
    context = parent.config.get("max_position_embeddings")
    if context is not None and config.seq_len > context:
        raise ConfigError(f"seq_len {config.seq_len} exceeds the model's context ({context} positions, "
                          f"max_position_embeddings in {parent.path}/config.json); lower seq_len")
    config.accumulation(world)
    check_loss(config.loss, device)
    stages = resolve_stages(config.data.mixtures, config.data.sources, inputs=not config.data.prepared)
    tokenizer = AutoTokenizer.from_pretrained(str(parent.path))
    sources = None
    if uses_prepared(stages, config.data):
        sources = open_sources(stages, config.data, tokenizer, config.seq_len)
    elif config.data.validation.every:
        raise ConfigError("data.validation needs prepared data (data.prepared): the on-the-fly mixture has no fixed "
                          "held-out documents; set data.validation.every to 0 or prepare the data")
    plan = check_fits(parent.config, config, world, device.type, device_budget(device, config.device_memory))
    return parent, stages, plan, tokenizer, sources


def peak_memory(device: torch.device) -> dict[str, int]:
    """This process's peak resident host memory (VmHWM) and, on a GPU, peak allocated device memory, in bytes."""
    out = {"host": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["host"] = int(line.split()[1]) * 1024
    except OSError:
        import resource

        out["host"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        out["device"] = torch.cuda.max_memory_allocated(device)
    return out


def build_model(parent: Checkpoint, plan: Parallelism, device: torch.device, load: bool = True) -> torch.nn.Module:
    """The parent's model, parallelised per `plan`, with this rank's shards on `device` (filled from the
    checkpoint unless `load` is false, e.g. when a training state will overwrite them)."""
    model = build_meta_model(parent)
    parallelize(model, plan, device)
    materialize(model, device)
    if load:
        load_weights(model, parent)
    return model


def train_step(model: torch.nn.Module, batch: torch.Tensor, optimizers: list[torch.optim.Optimizer],
               micro_batch: int, grad_clip: float, device: torch.device,
               defer_sync: bool = False) -> tuple[float, float]:
    """Forward/backward over `batch` in micro-batches, clip, step; returns (mean loss over all ranks, grad norm).
    Under FSDP2 each micro-batch's backward reduce-scatters its gradients unless `defer_sync` (gradient_sync:
    last_micro_batch), which leaves only the last one to."""
    accum = batch.shape[0] // micro_batch
    loss_sum = torch.zeros((), device=device)
    for i in range(accum):
        if defer_sync:
            model.set_requires_gradient_sync(i == accum - 1)
        x = batch[i * micro_batch:(i + 1) * micro_batch].to(device)
        loss = model(input_ids=x, labels=x).loss
        (loss / accum).backward()
        loss_sum += loss.detach().float()
    loss_mean = loss_sum / accum
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(loss_mean, op=dist.ReduceOp.AVG)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
    if hasattr(grad_norm, "full_tensor"):
        grad_norm = grad_norm.full_tensor()
    for opt in optimizers:
        opt.step()
        opt.zero_grad(set_to_none=True)
    return loss_mean.item(), grad_norm.item()


def train(config: TrainConfig, run_dir: str | Path | None = None, resume: bool = False,
          progress: ProgressFn | None = None) -> list[Path]:
    """Train per `config`; returns the run's HF exports (RUN/checkpoints/step-*), oldest first."""
    fix_mmap_threshold()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    plan = config.parallelism("cuda" if torch.cuda.is_available() else "cpu", world)
    rank, world, device, started = setup_distributed(need_group=plan.fsdp)
    run = config.path(run_dir or config.run_dir).absolute()
    batches: Batches | Prefetcher | None = None
    sinks: Sinks | None = None
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        parent, stages, memory_plan, tokenizer, sources = _check(config, world, device)
        has_state = any((run / "state").glob("step-*"))
        if has_state and not resume:
            raise ConfigError(f"run folder {run} already has training state; pass --resume to continue it "
                              f"or choose another run_dir")
        ends = stage_steps(stages, config.tokens_per_step)
        total = min(ends[-1], config.max_steps or ends[-1])
        run_id = config.run_id or run.name
        found = checkpointing.find_resumable(run) if resume else None

        torch.manual_seed(config.data.seed)
        barrier = dist.barrier if dist.is_initialized() else None
        loader = build_loader(stages, config, tokenizer, ends, run, rank, world, barrier, sources)
        model = build_model(parent, plan, device, load=found is None)
        optimizers = build_optimizers(model, config.optimizer)

        step = tokens = 0
        if found:
            path, state = found
            loader.load_state_dict(state["data"])
            checkpointing.load_state(path, model, optimizers, state)
            step, tokens = state["step"], state["tokens"]
        if rank == 0:
            truncate_metrics(run, step)  # also clears the log of an earlier attempt that saved no state
            write_text(run / "config.yaml", yaml.safe_dump(as_dict(config), sort_keys=False))
            sinks = Sinks(config.metrics, run, run_id, as_dict(config), resumed_step=step)
        batches = Prefetcher(loader, total, pin=device.type == "cuda") if sources and config.data.prefetch else loader
        held_out = loader.validation() if config.data.validation.every else {}

        fingerprint = parent.fingerprint()

        def training_record(stage: int) -> dict[str, Any]:
            return {"run_id": run_id, "step": step, "tokens": tokens, "stage": stages[stage].name,
                    "parent_fingerprint": fingerprint, "parent_path": str(parent.path),
                    "config": as_dict(config), "tokens_by_source": loader.tokens_by_source(step)}

        saver = checkpointing.StateSaver(run, config.checkpoint.keep_states, config.checkpoint.async_save)

        def checkpoint(stage: int) -> None:
            state = {"step": step, "tokens": tokens, "stage": stage, "data": loader.state_dict()}
            saver.save(step, model, optimizers, state)
            checkpointing.export_hf(run, step, model, parent, training_record(stage), config.checkpoint.export_dtype)

        if found and step > 0 and not (run / "checkpoints" / checkpointing.step_name(step)).exists():
            checkpointing.export_hf(run, step, model, parent, training_record(found[1]["stage"]),
                                    config.checkpoint.export_dtype)

        per_token = flops_per_token(parent.config, config.seq_len)
        peak = config.peak_tflops * 1e12 if config.peak_tflops else \
            measure_peak_flops(parent.config, config.micro_batch * config.seq_len, plan.dtype, device)
        note = on_the_fly_note(config.tokens_per_step, world, planned_step_seconds(
            parent.config, config.seq_len, config.tokens_per_step, world, peak)) if sources is None else None
        if note and rank == 0 and device.type == "cuda":
            log.warning(note)
        every = config.data.validation.every
        while step < total:
            t0 = time.perf_counter()
            stage = stage_of(step, ends)
            lr = lr_factor(step, total, config.schedule) * config.optimizer.lr
            set_lr(optimizers, lr / config.optimizer.lr)
            batch = batches.batch(step)
            data_wait = time.perf_counter() - t0
            loss, grad_norm = train_step(model, batch, optimizers, config.micro_batch, config.grad_clip, device,
                                         plan.fsdp and not plan.sync_every_micro_batch)
            step += 1
            tokens += config.tokens_per_step
            tokens_per_s = config.tokens_per_step / (time.perf_counter() - t0)
            row = {"step": step, "tokens": tokens, "stage": stages[stage].name, "loss": loss, "lr": lr,
                   "grad_norm": grad_norm, "tokens_per_s": tokens_per_s,
                   "mfu": mfu(tokens_per_s / world, per_token, peak), "data_wait_s": data_wait,
                   "memory_gib": round(max(peak_memory(device).values()) / 2**30, 3)}
            if every and (step % every == 0 or step == total):
                row["val_loss"] = held_out_loss(model, held_out, device, rank, world)
            if rank == 0 and (step % config.metrics.mixture_every == 0 or step in (ends[stage], total)):
                realised = loader.tokens_by_source(step)[stage]
                row["mixture"] = {k: v / sum(realised.values()) for k, v in realised.items()}
            if rank == 0 and (step % config.log_every == 0 or step == total or "val_loss" in row or "mixture" in row):
                append_metrics(run, row)
                sinks.log(row)
                if progress:
                    progress(row, total)
            if step % config.checkpoint.every == 0 or step == total:
                checkpoint(stage)
        saver.wait()
        _write_memory(run, memory_plan, peak_memory(device), peak, rank)
        return sorted(p for p in (run / "checkpoints").glob("step-*") if p.is_dir())
    finally:
        if isinstance(batches, Prefetcher):
            batches.close()
        if sinks is not None:
            sinks.close()
        if started:
            dist.destroy_process_group()


def held_out_at_start(config: TrainConfig) -> dict[str, float]:
    """The held-out loss per source of `config.model` before any training step, on the sequences the run evaluates
    (the point its loss curve starts from), in one process: a GPU when there is one, else the CPU. Needs prepared data
    and data.validation."""
    if not config.data.validation.every:
        raise ConfigError("the held-out loss at the start needs data.validation.every > 0 (and prepared data)")
    fix_mmap_threshold()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.threads:
        torch.set_num_threads(config.threads)
    parent, _, _, _, sources = _check(config, 1, device)
    if sources is None:
        raise ConfigError("the held-out loss needs prepared data (data.prepared)")
    model = build_model(parent, config.parallelism(device, 1), device)
    model.eval()
    return held_out_loss(model, validation_sequences(sources), device, 0, 1)


def _write_memory(run: Path, plan: MemoryPlan, measured: dict[str, int], peak_flops: float, rank: int) -> None:
    """RUN/memory.json: the planner's prediction beside every rank's measured peak (host RSS, GPU allocated)."""
    per_rank = [measured]
    if dist.is_initialized() and dist.get_world_size() > 1:
        per_rank = [None] * dist.get_world_size()
        dist.all_gather_object(per_rank, measured)
    if rank == 0:
        write_json(run / "memory.json", {"plan": dataclasses.asdict(plan), "plan_total": plan.total,
                                         "measured": per_rank, "peak_flops": peak_flops})
