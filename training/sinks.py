"""Where a run's metrics go besides metrics.jsonl: TensorBoard event files and Weights & Biases, on rank 0.

    metrics:
      tensorboard: true                            # RUN/tensorboard/  (tensorboard --logdir RUN/tensorboard)
      wandb: {project: openseek-mid, mode: offline} # RUN/wandb/offline-run-*/  (wandb sync RUN/wandb/offline-run-*)

Every row the trainer logs goes to each sink as scalars at its step; nested mappings become slash-separated tags
(`val_loss/<source>`, `mixture/<source>`). Offline W&B needs no network or account; `online` needs both. On resume,
TensorBoard drops the events an interrupted attempt logged after the resumed step (SummaryWriter's purge_step) and
W&B continues the same run id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError, ConfigError

WANDB_MODES = ("offline", "online")


@dataclass
class WandbConfig:
    project: str = "growbench"
    mode: str = "offline"
    """offline (files under RUN/wandb, no network; `wandb sync` uploads them later) or online."""
    entity: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in WANDB_MODES:
            raise ConfigError(f"metrics.wandb.mode must be one of {WANDB_MODES}, got {self.mode!r}")


@dataclass
class MetricsConfig:
    tensorboard: bool = False
    """Write TensorBoard event files to RUN/tensorboard."""
    wandb: WandbConfig | None = None
    """Log to Weights & Biases (absent: not at all)."""
    mixture_every: int = 100
    """Log the realised mixture shares of the current stage every N steps (and at each stage's last step)."""

    def __post_init__(self) -> None:
        if self.mixture_every < 1:
            raise ConfigError(f"metrics.mixture_every must be >= 1, got {self.mixture_every}")


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric entries of a row, nested mappings as 'outer/inner' tags; strings and None are left out."""
    out: dict[str, float] = {}
    for key, value in row.items():
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, tag + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[tag] = float(value)
    return out


class Sinks:
    """The configured sinks of one run; `log(row)` sends a metrics row to each, `close()` flushes them."""

    def __init__(self, config: MetricsConfig, run: Path, run_id: str, hyperparameters: dict[str, Any],
                 resumed_step: int = 0) -> None:
        self.writers: list[Any] = []
        self.wandb = None
        if config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise BackendError(f"metrics.tensorboard needs the tensorboard package (pip install tensorboard): "
                                   f"{e}") from None
            self.writers.append(SummaryWriter(log_dir=str(run / "tensorboard"),
                                              purge_step=resumed_step + 1 if resumed_step else None))
        if config.wandb is not None:
            try:
                import wandb
            except ImportError:
                raise BackendError("metrics.wandb needs the wandb package (pip install wandb)") from None
            stable_id = re.sub(r"[^A-Za-z0-9_-]", "-", run_id)[:48] + "-" + \
                hashlib.sha256(str(run).encode()).hexdigest()[:8]
            self.wandb = wandb.init(project=config.wandb.project, entity=config.wandb.entity, dir=str(run),
                                    mode=config.wandb.mode, name=run_id, id=stable_id, resume="allow",
                                    config=hyperparameters,
                                    settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))

    def log(self, row: dict[str, Any]) -> None:
        step = row["step"]
        scalars = {k: v for k, v in flatten(row).items() if k != "step"}
        for writer in self.writers:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.wandb is not None:
            self.wandb.finish()
