"""Run under torchrun: Muon on FSDP2-sharded matrices for 10 steps with given gradients; rank 0 saves every step's
full parameters. Usage: torchrun --nproc-per-node 2 muon_worker.py MODE OUT (MODE: owner or gather)."""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import distribute_tensor

from training.muon import Muon

SHAPES = [(96, 64), (33, 40), (64, 200), (7, 12), (128, 128), (40, 33)]


def weights_and_grads(steps: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(s, generator=gen) * 0.02 for s in SHAPES]
    return weights, [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(steps)]


def main(mode: str, out: str) -> None:
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    weights, grads = weights_and_grads(10)
    holder = torch.nn.Module()
    holder.mats = torch.nn.ParameterList([torch.nn.Parameter(w.clone()) for w in weights])
    fully_shard(holder)
    params = list(holder.mats)
    opt = Muon(params, lr=0.02, weight_decay=0.1, ns_dtype="float32", distribution=mode)
    history = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad = distribute_tensor(g, p.device_mesh, p.placements)
        opt.step()
        history.append([p.full_tensor() for p in params])
    if dist.get_rank() == 0:
        torch.save(history, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
