"""Held-out loss per source: each source's validation sequences (the tail of its prepared documents, never trained
on; training/prepared.py) evaluated every `data.validation.every` steps and at the last step.

The loss of a source is the mean over its held-out sequences of the model's next-token loss (every sequence has
seq_len - 1 predicted tokens, so this is also the per-token mean). Ranks split the sequences; every rank runs the
same number of forwards (FSDP2 needs all of them in each all-gather; a rank with fewer real sequences repeats one
and counts it zero) and the sums are all-reduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from growth.foundation.errors import ConfigError


@dataclass
class ValidationConfig:
    every: int = 0
    """Evaluate the held-out loss per source every N steps and at the last step (0: never). Needs prepared data."""
    sequences: int = 8
    """Sequences of seq_len tokens held out per source (its last whole documents, as Megatron splits)."""

    def __post_init__(self) -> None:
        if self.every < 0 or self.sequences < 1:
            raise ConfigError(f"data.validation needs every >= 0 and sequences >= 1, got every {self.every}, "
                              f"sequences {self.sequences}")


def held_out_loss(model: torch.nn.Module, sequences: dict[str, torch.Tensor], device: torch.device, rank: int,
                  world: int) -> dict[str, float]:
    """Mean held-out loss of each source, the same on every rank."""
    names = sorted(sequences)
    items = [(k, i) for k, name in enumerate(names) for i in range(len(sequences[name]))]
    per_rank = math.ceil(len(items) / world)
    mine = items[rank * per_rank:(rank + 1) * per_rank]
    sums = torch.zeros(len(names), dtype=torch.float64, device=device)
    with torch.no_grad():
        for j in range(per_rank):
            k, i = mine[j] if j < len(mine) else items[0]
            x = sequences[names[k]][i:i + 1].to(device=device, dtype=torch.long)
            loss = model(input_ids=x, labels=x).loss.double()
            if j < len(mine):
                sums[k] += loss
    if dist.is_initialized() and world > 1:
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    return {name: sums[k].item() / len(sequences[name]) for k, name in enumerate(names)}
