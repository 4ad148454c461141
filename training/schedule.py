"""Learning-rate schedule: linear warmup, then cosine decay to a floor (the card: 1000 warmup steps, cosine).

The factor is a pure function of the step, so resuming needs no scheduler state and every optimizer group scales
its own base lr by the same factor (`training.param_groups.set_lr`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from growth.foundation.errors import ConfigError


@dataclass
class ScheduleConfig:
    warmup_steps: int = 1000
    """Linear warmup from lr/warmup_steps to the peak lr."""
    min_lr_ratio: float = 0.1
    """The cosine floor as a fraction of the peak lr."""

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ConfigError(f"schedule.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"schedule.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


def lr_factor(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the peak lr for optimizer step `step` (0-based) of `total_steps`."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    decay_steps = max(total_steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / decay_steps, 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine
