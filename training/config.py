"""The train config: one YAML file composed of the sections defined next to the code that uses them.

    growbench train --config training/configs/tiny.yaml
    torchrun --nproc-per-node 8 -m suite.cli train --config training/configs/openseek-mid-v1.yaml

Unknown keys are errors. Relative paths (model, run_dir, mixture files, data.sources files) resolve against the
working directory; file paths inside a mixture file resolve against that mixture file.
The card's run: seq_len 8192 x global_batch 2048 = 16,777,216 tokens per step, so stage 1's 1.36T tokens are
81,063 steps and stage 2's 0.70T 41,724 more (122,787 steps in all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from growth.foundation.config import build, load_yaml, merged
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped
from growth.foundation.units import parse_bytes
from training.loss import LossConfig
from training.mixture import SourceData
from training.parallel import PRECISIONS, Parallelism, resolve
from training.param_groups import OptimizerConfig
from training.schedule import ScheduleConfig
from training.sinks import MetricsConfig
from training.validation import ValidationConfig

TRAIN_CONFIGS = Shipped("train config", Path(__file__).with_name("configs"))


@dataclass
class DataConfig:
    mixtures: list[str] = field(default_factory=lambda: ["tiny"])
    """Mixture files (or packaged names) whose stages run in order."""
    sources: dict[str, SourceData] = field(default_factory=dict)
    """Source name -> its data (files, hf or generator), for mixtures that name datasets without locations."""
    seed: int = 0
    """Seeds file order per epoch and the generators (on the fly), or each source's sample order (prepared data); the
    blend itself is deterministic."""
    prepared: str | None = None
    """A directory `growbench data prepare` wrote: the run reads every source's tokens from it (memory-mapped, each
    rank its own sequences) instead of tokenizing on the fly. Sources may instead list their own Megatron prefixes
    (data.sources.NAME.prepared)."""
    cache_dir: str | None = None
    """Where prepared runs cache each stage's blend index (default RUN/data-cache; shared by every rank)."""
    prefetch: bool = True
    """Prepared data: read step N + 1 in a background thread while step N trains."""
    validation: ValidationConfig = field(default_factory=ValidationConfig)


@dataclass
class CheckpointConfig:
    every: int = 1000
    """Save the training state and an HF export every N optimizer steps (and at the end)."""
    keep_states: int = 2
    """Full training states kept (oldest deleted first); HF exports are all kept for evaluation."""
    export_dtype: str = "auto"
    """Dtype of HF exports: auto (the parent checkpoint's), float32 or bfloat16."""
    async_save: bool = False
    """Write training states with DCP's async_save: each rank copies its shards to host memory and training goes on
    while a background thread writes them (the state is published, and the next save starts, once it is done). Costs
    host memory for one copy of the rank's parameters and optimizer states."""

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError(f"checkpoint.every must be >= 1, got {self.every}")
        if self.keep_states < 1:
            raise ConfigError(f"checkpoint.keep_states must be >= 1, got {self.keep_states}")


@dataclass
class TrainConfig:
    model: str
    """The HF checkpoint to continue training (usually a grown model)."""
    run_dir: str
    """Output folder: checkpoints/, state/, metrics.jsonl, config.yaml."""
    seq_len: int = 8192
    global_batch: int = 2048
    """Sequences per optimizer step, over all ranks and accumulation micro-steps."""
    micro_batch: int = 1
    """Sequences per forward/backward on one rank."""
    max_steps: int | None = None
    """Stop after this many steps (default: when the last stage's token budget is spent)."""
    grad_clip: float = 1.0
    """Clip the global grad norm to this (0 disables)."""
    precision: str = "auto"
    """auto (bf16 on GPU, fp32 on CPU), fp32 or bf16. bf16 is FSDP2's MixedPrecisionPolicy(param_dtype=bfloat16,
    reduce_dtype=float32): bf16 all-gathers and compute, fp32 master weights, gradients and optimizer states."""
    activation_checkpointing: Any = "none"
    """none, full (every decoder layer keeps only its input and is recomputed in backward) or {every_n: K} (layers
    0, K, 2K, ...)."""
    compile: bool = False
    """torch.compile each decoder layer."""
    gradient_sync: str = "every_micro_batch"
    """every_micro_batch: reduce-scatter each micro-batch's gradients into the sharded fp32 gradients (a rank holds a
    shard's gradients); last_micro_batch: only the last one's (one collective per step, but FSDP2 holds every
    parameter's whole gradient between micro-batches)."""
    reduce_dtype: str = "float32"
    """Dtype of the gradient reduce-scatter: float32 or bfloat16 (half the traffic; accumulation stays fp32)."""
    peak_tflops: float | None = None
    """Peak TFLOP/s of one device for MFU; default: measured once per run with a matmul of the model's shapes."""
    device_memory: str | None = None
    """Memory per process that the memory planner checks the run against before it starts (e.g. 80GiB). Default: the
    GPU's memory, or on CPU the host's memory divided among the processes on it."""
    threads: int | None = None
    """torch CPU threads per process (fixing it makes CPU runs bit-reproducible across machines)."""
    log_every: int = 1
    run_id: str | None = None
    """Defaults to the run folder's name."""
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def __post_init__(self) -> None:
        for name in ("seq_len", "global_batch", "micro_batch", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.global_batch % self.micro_batch:
            raise ConfigError(f"global_batch ({self.global_batch}) must be a multiple of micro_batch "
                              f"({self.micro_batch})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        self.parallelism("cpu", 1)  # checks activation_checkpointing, gradient_sync and reduce_dtype
        if self.peak_tflops is not None and self.peak_tflops <= 0:
            raise ConfigError(f"peak_tflops must be positive, got {self.peak_tflops}")
        if self.device_memory is not None:
            parse_bytes(self.device_memory)

    def path(self, value: str) -> Path:
        return Path(value).expanduser()

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.global_batch

    def parallelism(self, device: torch.device | str, world: int) -> Parallelism:
        """What training.parallel applies for this config on `world` processes of `device`."""
        return resolve(self.precision, self.activation_checkpointing, self.compile, torch.device(device), world,
                       self.reduce_dtype, self.gradient_sync, self.loss)

    def accumulation(self, world_size: int) -> int:
        per_rank = self.global_batch // world_size
        if self.global_batch % world_size or per_rank % self.micro_batch:
            raise ConfigError(f"global_batch ({self.global_batch}) must split into {world_size} ranks x whole "
                              f"micro-batches of {self.micro_batch}")
        return per_rank // self.micro_batch


def load_config(name_or_path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """A shipped train config by name (training/configs/) or a YAML file, unknown keys rejected; `overrides` (the
    CLI's few flags, or a pipeline's train section) merge over it, nested mappings key by key."""
    path = TRAIN_CONFIGS.resolve(name_or_path)
    where = str(path) + (" (with overrides)" if overrides else "")
    return build(TrainConfig, merged(load_yaml(path), overrides or {}), where=where)
