"""Training throughput on CPU: MFU with and without activation checkpointing, and distributed vs gathered Muon.

    python -m bench.train_throughput                   # both parts, a few minutes on 2 cores
    python -m bench.train_throughput --part mfu --repeats 3

(a) MFU of the tiny model (growth.fixture's default, 0.8M parameters) and a 100M-parameter synthetic Qwen3 (16
    layers, hidden 768, FFN 2048), one process, fp32, micro-batches of `batch` x `seq_len` tokens, with activation
    checkpointing none and full. For each: the median time of forward+backward and of the optimizer step (Muon +
    AdamW; it does not depend on checkpointing), MFU of forward+backward alone and of the whole step (what
    metrics.jsonl logs), both against the matmul peak measured on the model's shapes (training.throughput). The
    baseline is no checkpointing; the two settings alternate step by step so that both see the same machine load.
(b) The Muon step of the 100M model under FSDP2 on 2 processes (gloo): owner mode (each matrix orthogonalised once)
    against gather mode (every rank orthogonalises every matrix), median step time and their ratio (target < 1;
    ideally near 1/2 on 2 ranks), plus the largest difference between the two modes' updates (they must agree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MODELS = {"tiny": {}, "100M": {"layers": 16, "hidden": 768, "ffn": 2048, "heads": 12, "kv_heads": 4, "head_dim": 64}}


def _fixture(work: Path, name: str) -> Path:
    from growth.fixture import TinySpec, make_tiny

    path = work / name
    return path if path.exists() else make_tiny(path, TinySpec(**MODELS[name]))


def time_model(path: Path, seq_len: int, batch: int, repeats: int) -> list[dict]:
    """Median fwd+bwd seconds without and with full checkpointing (interleaved step by step, so both see the same
    machine load) and median optimizer seconds, one process, fp32, after a warm-up step."""
    from growth.checkpoint import Checkpoint
    from training.parallel import resolve
    from training.param_groups import OptimizerConfig, build_optimizers
    from training.throughput import flops_per_token, measure_peak_flops, mfu
    from training.trainer import build_model, train_step

    parent = Checkpoint.open(path)
    cpu = torch.device("cpu")
    models = {ac: build_model(parent, resolve("fp32", ac, False, cpu, 1), cpu) for ac in ("none", "full")}
    optimizers = build_optimizers(models["none"], OptimizerConfig(lr=1e-3))  # the step does not depend on AC
    gen = torch.Generator().manual_seed(0)
    fwd: dict[str, list[float]] = {"none": [], "full": []}
    cpu_s: dict[str, list[float]] = {"none": [], "full": []}
    opt: list[float] = []
    for i in range(repeats + 1):
        x = torch.randint(0, parent.config["vocab_size"], (batch, seq_len), generator=gen)
        for ac, model in models.items():
            t, c = time.perf_counter(), time.process_time()
            train_step(model, x, [], batch, 1.0, cpu, False)
            if i:
                fwd[ac].append(time.perf_counter() - t)
                cpu_s[ac].append(time.process_time() - c)
        models["full"].zero_grad(set_to_none=True)
        t = time.perf_counter()
        for o in optimizers:
            o.step()
            o.zero_grad(set_to_none=True)
        if i:
            opt.append(time.perf_counter() - t)
    peak = measure_peak_flops(parent.config, batch * seq_len, torch.float32, cpu, repeats=10)
    per_token, tokens, o = flops_per_token(parent.config, seq_len), batch * seq_len, statistics.median(opt)
    rows = []
    for ac, times in fwd.items():
        f = statistics.median(times)
        rows.append({"parameters": parent.num_parameters(), "ac": ac, "fwd_bwd_s": f, "optimizer_s": o,
                     "fwd_bwd_cpu_s": statistics.median(cpu_s[ac]),
                     "peak_gflops": peak / 1e9, "mfu_fwd_bwd": mfu(tokens / f, per_token, peak),
                     "mfu_step": mfu(tokens / (f + o), per_token, peak)})
    return rows


def part_mfu(args: argparse.Namespace, work: Path) -> list[dict]:
    rows = []
    print(f"\n(a) one process, fp32, {args.batch} x {args.seq_len} tokens per step, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}; peak = best of 10 matmuls of the model's shape")
    print(f"{'model':<6}{'params':>12}{'AC':>6}{'fwd+bwd s':>11}{'CPU s':>8}{'MFU fwd+bwd':>13}{'optim s':>9}"
          f"{'MFU step':>10}{'peak GFLOP/s':>14}")
    for name in MODELS:
        for r in time_model(_fixture(work, name), args.seq_len, args.batch, args.repeats):
            rows.append(dict(r, model=name))
            print(f"{name:<6}{r['parameters']:>12,}{r['ac']:>6}{r['fwd_bwd_s']:>11.3f}{r['fwd_bwd_cpu_s']:>8.2f}"
                  f"{r['mfu_fwd_bwd']:>13.1%}{r['optimizer_s']:>9.3f}{r['mfu_step']:>10.1%}{r['peak_gflops']:>14.1f}")
        none, full = rows[-2], rows[-1]
        print(f"{'':<6}full checkpointing: x{full['fwd_bwd_s'] / none['fwd_bwd_s']:.2f} fwd+bwd wall time, "
              f"x{full['fwd_bwd_cpu_s'] / none['fwd_bwd_cpu_s']:.2f} CPU time (one more forward: ~x1.33 if "
              f"backward costs twice the forward)")
    return rows


def muon_worker(model: Path, out: Path, repeats: int) -> None:
    """Under torchrun: time owner vs gather Muon steps on the FSDP2-sharded model; rank 0 writes `out`."""
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    from growth.checkpoint import Checkpoint
    from training.parallel import Parallelism, setup_distributed
    from training.param_groups import OptimizerConfig, build_optimizers
    from training.trainer import build_model

    rank, world, device, started = setup_distributed(need_group=True)
    parent = Checkpoint.open(model)
    result = {"world": world}
    updates = {}
    for mode in ("owner", "gather"):
        net = build_model(parent, Parallelism(dtype=torch.float32, fsdp=True), device)
        muon = build_optimizers(net, OptimizerConfig(lr=1e-3, ns_distribution=mode))[0]
        params = [p for g in muon.param_groups for p in g["params"]]
        gen = torch.Generator().manual_seed(rank)
        times, cpu = [], []
        for i in range(repeats + 1):
            for p in params:
                p.grad = DTensor.from_local(
                    torch.randn(p.to_local().shape, generator=gen), p.device_mesh, p.placements)
            before = [p.to_local().clone() for p in params] if i == 0 else None
            dist.barrier()
            t, c = time.perf_counter(), time.process_time()
            muon.step()
            c = time.process_time() - c
            dist.barrier()
            if i:
                times.append(time.perf_counter() - t)
                cpu.append(c)
            else:
                updates[mode] = [p.to_local() - b for p, b in zip(params, before)]
        result[mode] = statistics.median(times)
        result[f"{mode}_cpu"] = statistics.median(cpu)
        result["matrices"], result["muon_parameters"] = len(params), sum(p.numel() for p in params)
    diff = torch.tensor(max((a - b).abs().max().item() for a, b in zip(updates["owner"], updates["gather"])))
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    result["max_abs_update_difference"] = diff.item()
    if rank == 0:
        out.write_text(json.dumps(result))
    if started:
        dist.destroy_process_group()


def part_muon(args: argparse.Namespace, work: Path) -> dict:
    path = _fixture(work, "100M")
    out = work / "muon.json"
    env = dict(os.environ, OMP_NUM_THREADS=str(max(torch.get_num_threads() // 2, 1)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
           "bench.train_throughput", "--muon-worker", str(path), "--out", str(out), "--repeats", str(args.repeats)]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    print(f"\n(b) Muon step of the 100M model ({r['matrices']} matrices, {r['muon_parameters']:,} Muon parameters), "
          f"FSDP2 on {r['world']} processes (gloo), median of {args.repeats}; load average {os.getloadavg()[0]:.1f}")
    print(f"owner (distributed): {r['owner']:.2f} s wall, {r['owner_cpu']:.2f} s CPU on rank 0; gather: "
          f"{r['gather']:.2f} s wall, {r['gather_cpu']:.2f} s CPU")
    print(f"ratio distributed/gathered: {r['owner'] / r['gather']:.2f} wall, {r['owner_cpu'] / r['gather_cpu']:.2f} CPU "
          f"(target < 1); max |update difference| {r['max_abs_update_difference']:.1e}")
    return r


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "mfu", "muon"], default="all")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4, help="Sequences per micro-batch (one micro-batch a step).")
    parser.add_argument("--repeats", type=int, default=2, help="Timed steps after one warm-up step.")
    parser.add_argument("--work", type=Path, default=None, help="Keep the fixtures here (default: a temp folder).")
    parser.add_argument("--muon-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.muon_worker:
        return muon_worker(args.muon_worker, args.out, args.repeats)
    print(f"host: {os.uname().nodename} ({os.cpu_count()} cpus), torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.part in ("all", "mfu"):
            part_mfu(args, work)
        if args.part in ("all", "muon"):
            part_muon(args, work)


if __name__ == "__main__":
    main()
