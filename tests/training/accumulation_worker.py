"""One training step's gradients of a fixed batch of 8 sequences, split over the ranks (under torchrun) and into
micro-batches, fp32, no optimizer; rank 0 saves the loss and the full gradients.
Usage: [torchrun --nproc-per-node N] accumulation_worker.py MODEL MICRO_BATCH GRADIENT_SYNC OUT"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from growth.checkpoint import Checkpoint
from training.parallel import resolve, setup_distributed
from training.trainer import build_model, train_step

BATCH, SEQ = 8, 32


def gradients(model_path: str, micro_batch: int, gradient_sync: str) -> tuple[float, dict[str, torch.Tensor]]:
    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    plan = resolve("fp32", "none", False, torch.device("cpu"), world, gradient_sync=gradient_sync)
    rank, world, device, started = setup_distributed(need_group=plan.fsdp)
    parent = Checkpoint.open(model_path)
    model = build_model(parent, plan, device)
    batch = torch.randint(0, parent.config["vocab_size"], (BATCH, SEQ), generator=torch.Generator().manual_seed(0))
    per_rank = BATCH // world
    loss, _ = train_step(model, batch[rank * per_rank:(rank + 1) * per_rank], [], micro_batch, 0.0, device,
                         plan.fsdp and not plan.sync_every_micro_batch)
    grads = {name: p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
             for name, p in model.named_parameters()}
    if started:
        dist.destroy_process_group()
    return loss, grads


if __name__ == "__main__":
    loss, grads = gradients(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"loss": loss, "grads": grads}, sys.argv[4])
