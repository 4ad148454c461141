"""Muon benchmark: (a) optimizer step time and Newton-Schulz throughput, (b) Muon vs AdamW on a grown tiny model.

    python -m bench.muon                      # both parts; writes runs/bench-muon/{curves.csv,curves.png,report.md}
    python -m bench.muon --part a --layers 2 --hidden 256 --ffn 1024

(a) One parameter set (the 2-D hidden matrices of a Qwen3-shaped block stack, ~2M parameters by default) with fixed
random gradients; the time of one optimizer step for growbench's Muon with fp32 and bf16 Newton-Schulz,
torch.optim.Muon (always bf16 NS, adjust_lr_fn="match_rms_adamw") and torch.optim.AdamW, as ratios to AdamW and to
torch.optim.Muon. Also fp32 NS GFLOP/s on the same matrices against this machine's measured fp32 matmul rate.
Targets: CPU fp32 NS >= 50% of the matmul rate; GPU bf16 step <= 1.1x torch.optim.Muon.

(b) The card's claim at toy scale: a tiny Qwen3 seed is pre-trained briefly with AdamW, grown with the card plan's
shape (untie, FFN x2 at 10 dB SNR, stack a middle block of layers: 6 -> 9 layers like 36 -> 56), then continued
with Muon and with AdamW on the same tokens and schedule, each over a small lr grid. Prints final losses.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from training.distributed_muon import ns_flops
from training.newton_schulz import newton_schulz

REPO = Path(__file__).resolve().parents[1]


def param_set(layers: int, hidden: int, ffn: int, heads: int, kv: int, head_dim: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = []
    for _ in range(layers):
        shapes += [(heads * head_dim, hidden), (kv * head_dim, hidden), (kv * head_dim, hidden),
                   (hidden, heads * head_dim), (ffn, hidden), (ffn, hidden), (hidden, ffn)]
    return [torch.randn(s, generator=gen) * 0.02 for s in shapes]


def time_step(make_opt, weights: list[torch.Tensor], repeats: int) -> float:
    """Median seconds of one optimizer step (after a warm-up step that creates the state)."""
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    gen = torch.Generator().manual_seed(1)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = make_opt(params)
    opt.step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_rate(size: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / t / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def part_a(args: argparse.Namespace) -> dict:
    from training.muon import Muon

    weights = param_set(args.layers, args.hidden, args.ffn, args.heads, args.kv_heads, args.head_dim)
    n = sum(w.numel() for w in weights)
    rows = {
        "growbench Muon (fp32 NS)": (lambda p: Muon(p, lr=1e-3, ns_dtype="float32"), args.repeats),
        "growbench Muon (bf16 NS)": (lambda p: Muon(p, lr=1e-3, ns_dtype="bfloat16"), args.bf16_repeats),
        "torch.optim.Muon (bf16 NS)": (lambda p: torch.optim.Muon(p, lr=1e-3, adjust_lr_fn="match_rms_adamw"),
                                       args.bf16_repeats),
        "torch.optim.AdamW": (lambda p: torch.optim.AdamW(p, lr=1e-3), args.repeats),
    }
    times = {name: time_step(make, weights, reps) for name, (make, reps) in rows.items()}
    flops = sum(ns_flops(tuple(w.shape)) for w in weights)
    ns_time = statistics.median(_timed(lambda: [newton_schulz(w) for w in weights]) for _ in range(args.repeats))
    rate = matmul_rate()
    adamw, torch_muon = times["torch.optim.AdamW"], times["torch.optim.Muon (bf16 NS)"]
    print(f"\n(a) optimizer step on {len(weights)} matrices, {n:,} parameters, {torch.get_num_threads()} threads")
    print(f"{'optimizer':<30}{'step ms':>10}{'x AdamW':>10}{'x torch Muon':>14}")
    for name, t in times.items():
        print(f"{name:<30}{t * 1e3:>10.1f}{t / adamw:>10.2f}{t / torch_muon:>14.3f}")
    ns_rate = flops / ns_time / 1e9
    print(f"fp32 Newton-Schulz: {flops / 1e9:.2f} GFLOP in {ns_time * 1e3:.1f} ms = {ns_rate:.1f} GFLOP/s; "
          f"fp32 matmul 1024^3: {rate:.1f} GFLOP/s; ratio {ns_rate / rate:.2f} (target >= 0.50)")
    return {"parameters": n, "step_seconds": times, "ns_gflop": flops / 1e9, "ns_seconds": ns_time,
            "ns_gflops": ns_rate, "matmul_gflops": rate, "ns_over_matmul": ns_rate / rate}


def grow_seed(work: Path, args: argparse.Namespace) -> Path:
    """A tiny seed, briefly pre-trained with AdamW, then grown with the card plan's shape."""
    from growth.fixture import TinySpec, make_tiny
    from growth.grow import grow
    from growth.plan import parse_plan
    from training.trainer import train

    seed = make_tiny(work / "seed", TinySpec(layers=6, hidden=128, ffn=256))
    pre = train(config(seed, work / "pretrain", muon=False, lr=3e-3, steps=args.pretrain_steps, args=args,
                       data_seed=1))[-1]
    plan = parse_plan({"name": "tiny-openseek-shape", "seed": 0, "steps": [
        {"op": "untie"},
        {"op": "width", "intermediate_size": 512, "snr_db": 10, "noise": "hypercloning"},
        {"op": "depth", "start": 2, "end": 5, "order": "block", "init": "copy"}]}, "bench plan")
    return grow(pre, work / "grown", plan).path


def config(model: Path, run: Path, *, muon: bool, lr: float, steps: int, args: argparse.Namespace,
           data_seed: int = 0):
    """Same tokens (data seed), same schedule; only the optimizer and lr differ between runs."""
    from training.config import DataConfig, TrainConfig
    from training.param_groups import OptimizerConfig
    from training.schedule import ScheduleConfig

    return TrainConfig(model=str(model), run_dir=str(run), seq_len=args.seq_len, global_batch=args.batch,
                       micro_batch=args.batch, max_steps=steps, threads=args.threads,
                       data=DataConfig(seed=data_seed),
                       optimizer=OptimizerConfig(lr=lr, muon=muon), schedule=ScheduleConfig(
                           warmup_steps=max(steps // 10, 1), min_lr_ratio=0.1))


def part_b(args: argparse.Namespace, out: Path) -> dict:
    from training.trainer import train

    curves: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        grown = grow_seed(work, args)
        for muon in (True, False):
            for lr in args.lrs:
                name = f"{'muon' if muon else 'adamw'} lr={lr:g}"
                run = work / name.replace(" ", "_")
                t = time.perf_counter()
                train(config(grown, run, muon=muon, lr=lr, steps=args.steps, args=args))
                rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
                curves[name] = [r["loss"] for r in rows]
                print(f"  {name:<18} final loss {curves[name][-1]:.4f} ({time.perf_counter() - t:.0f} s)")
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", *curves])
        for i in range(args.steps):
            w.writerow([i + 1, *(f"{c[i]:.6f}" for c in curves.values())])
    plot(curves, out / "curves.png")
    final = {k: sum(v[-5:]) / 5 for k, v in curves.items()}  # mean of the last 5 steps: less step noise
    best = {o: min((v, k) for k, v in final.items() if k.startswith(o)) for o in ("muon", "adamw")}
    print(f"\n(b) Muon vs AdamW after {args.steps} steps of {args.batch} x {args.seq_len} tokens "
          f"(final = mean loss of the last 5 steps)")
    for k, v in final.items():
        print(f"  {k:<18} {v:.4f}")
    print(f"  best Muon {best['muon'][1]}: {best['muon'][0]:.4f}; best AdamW {best['adamw'][1]}: "
          f"{best['adamw'][0]:.4f}; difference {best['adamw'][0] - best['muon'][0]:+.4f} (AdamW - Muon)")
    return {"final_mean_last5": final, "best": {k: {"run": v[1], "loss": v[0]} for k, v in best.items()}}


def plot(curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=name, linestyle="-" if name.startswith("muon") else "--")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Grown tiny Qwen3: Muon vs AdamW (same tokens, same schedule)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["a", "b", "all"], default="all")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench-muon")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--ffn", type=int, default=1024)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--bf16-repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=60, help="(b) continued-training steps per run")
    p.add_argument("--pretrain-steps", type=int, default=40, help="(b) AdamW steps on the seed before growing")
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2])
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"torch": torch.__version__, "python": sys.version.split()[0], "machine": platform.processor() or
              platform.machine(), "threads": torch.get_num_threads(), "args": {k: str(v) for k, v in vars(args).items()}}
    if args.part in ("a", "all"):
        report["a"] = part_a(args)
    if args.part in ("b", "all"):
        report["b"] = part_b(args, args.out)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out / "report.md").write_text(markdown(report))
    print(f"\nwrote {args.out}/report.json, report.md" + (", curves.csv, curves.png" if "b" in report else ""))


def markdown(report: dict) -> str:
    """The run as a Markdown report: versions, settings, and the tables printed above."""
    lines = [f"# bench/muon.py: {time.strftime('%Y-%m-%d')}", "",
             f"torch {report['torch']}, Python {report['python']}, {report['machine']}, "
             f"{report['threads']} torch thread(s). Command arguments: `{report['args']}`", ""]
    if "a" in report:
        a = report["a"]
        steps = a["step_seconds"]
        lines += [f"## (a) optimizer step, {a['parameters']:,} parameters", "",
                  "| optimizer | step ms | x AdamW | x torch.optim.Muon |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v * 1e3:.1f} | {v / steps['torch.optim.AdamW']:.2f} | "
                  f"{v / steps['torch.optim.Muon (bf16 NS)']:.3f} |" for k, v in steps.items()]
        lines += ["", f"fp32 Newton-Schulz {a['ns_gflops']:.1f} GFLOP/s vs fp32 matmul {a['matmul_gflops']:.1f} "
                      f"GFLOP/s: ratio {a['ns_over_matmul']:.2f} (target >= 0.50)", ""]
    if "b" in report:
        b = report["b"]
        lines += ["## (b) grown tiny model, Muon vs AdamW (mean loss of the last 5 steps)", "",
                  "| run | final loss |", "|---|---:|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in b["final_mean_last5"].items()]
        lines += ["", f"Best Muon: {b['best']['muon']['run']} {b['best']['muon']['loss']:.4f}; best AdamW: "
                      f"{b['best']['adamw']['run']} {b['best']['adamw']['loss']:.4f}. Curves: curves.csv, "
                      "curves.png.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
