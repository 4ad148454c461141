"""Distributed Muon under FSDP2: each matrix is orthogonalised once, on an owner rank, and each rank gets its rows back.

Under FSDP2 every rank holds rows [r*c, (r+1)*c) of each matrix (c = ceil(rows/world)), but Newton-Schulz needs the
whole matrix. Instead of every rank all-gathering every matrix and orthogonalising all of them (the `gather` mode:
world-size-times redundant compute), `plan_buckets` gives each matrix an owner, from the shapes alone (identical on
every rank, no communication): matrices sorted by Newton-Schulz FLOPs, each to the least-loaded rank so far (longest
processing time first), in buckets that hold at most the largest matrix per owner. Per bucket:

  1. all_to_all: every rank sends its row block of each matrix, in the NS dtype, to that matrix's owner;
  2. each owner stacks its full matrices and runs Newton-Schulz on them;
  3. all_to_all: each owner sends every rank its rows of the result.

The result equals the gather mode's bit for bit (the same full matrix goes through the same Newton-Schulz), and so the
single-process optimizer's up to the gradients' reduction order. Per rank and step, with P_muon Muon parameters,
world W and b bytes per element of the NS dtype:
  owner:  sends and receives (W-1)/W x P_muon/W elements in each of the two all-to-alls: 2 x (W-1)/W^2 x P_muon x b
          each way; Newton-Schulz on 1/W of the FLOPs.
  gather: receives (W-1)/W x P_muon elements in fp32 (full_tensor of the update): 4 x (W-1)/W x P_muon bytes, and
          runs Newton-Schulz on every matrix.
For the card's 10.61B model (P_muon = 9.81B, bf16 NS) on 64 GPUs: owner 0.61 GB each way per GPU per step and at
most 8.9 TFLOP of Newton-Schulz per GPU (3 of the 168 FFN matrices of 2.7 TFLOP each, plus attention); gather
38.7 GB received per GPU and 543 TFLOP per GPU. On 256 GPUs: owner 0.15 GB and 2.7 TFLOP; gather 39.2 GB and 543
TFLOP. (`communication_bytes` computes these; `growbench train --plan-memory` prints them.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from training.loading import row_range
from training.newton_schulz import NS_STEPS, newton_schulz


def ns_flops(shape: Sequence[int], steps: int = NS_STEPS) -> int:
    """Multiply-add FLOPs of quintic Newton-Schulz on a matrix (on its short side: m <= n)."""
    m, n = sorted(shape[:2])
    return steps * (4 * m * m * n + 2 * m ** 3)


@dataclass(frozen=True)
class Bucket:
    items: tuple[int, ...]
    """Indexes into the matrix list, in exchange order."""
    owners: tuple[int, ...]
    """The rank that orthogonalises each item."""


def plan_buckets(shapes: Sequence[Sequence[int]], world: int) -> list[Bucket]:
    """Owners balanced by Newton-Schulz FLOPs (LPT), in buckets holding at most the largest matrix per owner."""
    if not shapes:
        return []
    numel = [s[0] * s[1] for s in shapes]
    cap = max(numel)
    order = sorted(range(len(shapes)), key=lambda i: (-ns_flops(shapes[i]), i))
    load = [0] * world
    buckets: list[Bucket] = []
    items: list[int] = []
    owners: list[int] = []
    held = [0] * world
    for i in order:
        owner = min(range(world), key=lambda r: (load[r], r))
        if items and held[owner] + numel[i] > cap:
            buckets.append(Bucket(tuple(items), tuple(owners)))
            items, owners, held = [], [], [0] * world
        items.append(i)
        owners.append(owner)
        held[owner] += numel[i]
        load[owner] += ns_flops(shapes[i])
    buckets.append(Bucket(tuple(items), tuple(owners)))
    return buckets


def communication_bytes(shapes: Sequence[Sequence[int]], world: int, ns_bytes: int) -> dict[str, float]:
    """Bytes each rank sends (= receives) per step in owner mode, and receives in gather mode; NS FLOPs per rank."""
    p = sum(s[0] * s[1] for s in shapes)
    flops = [0] * world
    for bucket in plan_buckets(shapes, world):
        for i, owner in zip(bucket.items, bucket.owners):
            flops[owner] += ns_flops(shapes[i])
    return {"owner_bytes": 2 * (world - 1) / world ** 2 * p * ns_bytes, "gather_bytes": (world - 1) / world * p * 4,
            "owner_flops": max(flops), "gather_flops": sum(flops)}


def _exchange(send: list[list[torch.Tensor]], recv_numel: list[int], group: dist.ProcessGroup,
              dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """all_to_all_single of per-destination tensor lists; returns one flat tensor per source rank. Sent as bytes, so
    any dtype works on any backend."""
    flat = [torch.cat([t.reshape(-1) for t in ts]) if ts else torch.empty(0, dtype=dtype, device=device)
            for ts in send]
    size = dtype.itemsize
    inp = torch.cat(flat).view(torch.uint8)
    out = torch.empty(sum(recv_numel) * size, dtype=torch.uint8, device=device)
    dist.all_to_all_single(out, inp, [n * size for n in recv_numel], [f.numel() * size for f in flat], group=group)
    return list(out.view(dtype).split(recv_numel))


def orthogonalise_bucket(updates: list[torch.Tensor], shapes: list[tuple[int, int]], owners: Sequence[int],
                         group: dist.ProcessGroup, *, steps: int, coefficients: tuple[float, float, float],
                         eps: float, dtype: torch.dtype) -> list[torch.Tensor]:
    """Newton-Schulz of row-sharded matrices: `updates[k]` is this rank's row block of a matrix of `shapes[k]`.
    Returns this rank's row blocks of the orthogonalised matrices, in `dtype`."""
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    device = updates[0].device if updates else torch.device("cpu")
    if world == 1:
        return [newton_schulz(u, steps=steps, coefficients=coefficients, eps=eps, dtype=dtype) for u in updates]
    rows = [[row_range(s[0], world, r) for r in range(world)] for s in shapes]
    mine = [k for k, o in enumerate(owners) if o == rank]
    # 1. row blocks to owners
    send = [[updates[k].to(dtype) for k, o in enumerate(owners) if o == dest] for dest in range(world)]
    recv = [sum((rows[k][src][1] - rows[k][src][0]) * shapes[k][1] for k in mine) for src in range(world)]
    pieces = [list(p.split([(rows[k][src][1] - rows[k][src][0]) * shapes[k][1] for k in mine]))
              for src, p in enumerate(_exchange(send, recv, group, dtype, device))]
    # 2. the owner's Newton-Schulz on whole matrices
    results = {}
    for j, k in enumerate(mine):
        full = torch.cat([pieces[src][j] for src in range(world)]).view(shapes[k])
        results[k] = newton_schulz(full, steps=steps, coefficients=coefficients, eps=eps, dtype=dtype)
    del pieces
    # 3. each rank's rows back from the owners
    send = [[results[k][rows[k][dest][0]:rows[k][dest][1]] for k in mine] for dest in range(world)]
    mine_rows = [rows[k][rank][1] - rows[k][rank][0] for k in range(len(shapes))]
    recv = [sum(mine_rows[k] * shapes[k][1] for k, o in enumerate(owners) if o == src) for src in range(world)]
    back = _exchange(send, recv, group, dtype, device)
    out: list[torch.Tensor] = [torch.empty(0)] * len(shapes)
    for src in range(world):
        ks = [k for k, o in enumerate(owners) if o == src]
        for k, piece in zip(ks, back[src].split([mine_rows[k] * shapes[k][1] for k in ks])):
            out[k] = piece.view(mine_rows[k], shapes[k][1])
    return out
