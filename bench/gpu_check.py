"""GPU check, ready to run on one GPU in under 8 minutes: bf16 Muon against torch.optim.Muon, and one FSDP2 training
step (world 1) of a >= 1B-parameter synthetic grown Qwen3 at seq_len 8192 with activation checkpointing and the bf16
mixed-precision policy; writes a JSON report.

    python -m bench.gpu_check                         # on a GPU; then commit the report as
                                                      #   bench/reports/gpu_check_<gpu>_<yyyymm>.json
    python -m bench.gpu_check --smoke --out r.json    # a tiny version that runs anywhere (CPU: gloo, fp32 NS)

Needs only torch, transformers, safetensors (and pyyaml, tokenizers, which transformers brings) and this project:
nothing on its import path imports lm-eval, vLLM, DuckDB or pandas.

(a) Muon: growbench's Muon with bf16 Newton-Schulz and torch.optim.Muon(adjust_lr_fn="match_rms_adamw") on the
    matrices of one grown layer of the card's model (q, k, v, o, gate, up, down of hidden 2560, FFN 19456), the same
    gradients for 10 steps: the largest relative difference of the updates (bf16 rounding: <= 1e-2) and the median
    step time of each, as a ratio (target <= 1.1).
(b) One step: a synthetic grown Qwen3 (untied embeddings, doubled FFN: 12 layers, hidden 2048, FFN 12288, vocab
    151936; 1.68B parameters) written as a bf16 checkpoint, loaded shard-wise (training.loading) into FSDP2 with
    MixedPrecisionPolicy(bf16, fp32) and full activation checkpointing, Muon + AdamW; one sequence of 8192 tokens
    per step. Reports the second step's tokens/s and MFU (against a matmul peak measured on the model's shapes) and
    the peak GPU memory allocated against the memory planner's prediction for the same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

CARD_LAYER = [(4096, 2560), (1024, 2560), (1024, 2560), (2560, 4096), (19456, 2560), (19456, 2560), (2560, 19456)]
SMOKE_LAYER = [(128, 64), (32, 64), (32, 64), (64, 128), (256, 64), (256, 64), (64, 256)]
GROWN = {"layers": 12, "hidden": 2048, "ffn": 12288, "heads": 16, "kv_heads": 8, "head_dim": 128, "vocab": 151936}
SMOKE = {"layers": 2, "hidden": 128, "ffn": 512, "heads": 4, "kv_heads": 2, "head_dim": 32, "vocab": 1024}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_muon(shapes: list[tuple[int, int]], device: torch.device, steps: int = 10) -> dict:
    """Updates of growbench's bf16 Muon vs torch.optim.Muon over `steps` steps, and their step times."""
    from training.muon import Muon

    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen) * 0.02 for s in shapes]
    ours = [torch.nn.Parameter(w.to(device)) for w in init]
    theirs = [torch.nn.Parameter(w.to(device)) for w in init]
    opt_ours = Muon(ours, lr=0.02, weight_decay=0.1, ns_dtype="bfloat16")
    opt_theirs = torch.optim.Muon(theirs, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    worst = 0.0
    times: dict[str, list[float]] = {"growbench": [], "torch": []}
    for _ in range(steps):
        grads = [torch.randn(s, generator=gen).to(device) for s in shapes]
        before = [p.detach().clone() for p in ours], [p.detach().clone() for p in theirs]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        for name, opt in (("growbench", opt_ours), ("torch", opt_theirs)):
            _sync(device)
            t = time.perf_counter()
            opt.step()
            _sync(device)
            times[name].append(time.perf_counter() - t)
        for p, q, b0, b1 in zip(ours, theirs, *before):
            du, dt = p.detach() - b0, q.detach() - b1
            worst = max(worst, ((du - dt).norm() / dt.norm()).item())
    ours_s, theirs_s = statistics.median(times["growbench"][1:]), statistics.median(times["torch"][1:])
    return {"shapes": shapes, "steps": steps, "max_rel_diff": worst, "within_bf16_rounding": worst <= 1e-2,
            "step_ms_growbench": ours_s * 1e3, "step_ms_torch": theirs_s * 1e3, "ratio": ours_s / theirs_s}


def check_step(geometry: dict, seq_len: int, device: torch.device, work: Path) -> dict:
    """Two FSDP2 steps (world 1, bf16 policy, full activation checkpointing) on a synthetic grown Qwen3; the second
    one is measured."""
    from growth.checkpoint import Checkpoint
    from growth.fixture import TinySpec, make_tiny
    from training.config import TrainConfig
    from training.memory_plan import plan_memory
    from training.parallel import resolve, setup_distributed
    from training.param_groups import build_optimizers
    from training.throughput import flops_per_token, measure_peak_flops, mfu
    from training.trainer import build_model, peak_memory, train_step

    t = time.perf_counter()
    path = make_tiny(work / "grown", TinySpec(**geometry, tied=False, dtype="bfloat16", max_positions=seq_len,
                                              shard_size=2**30))
    write_s = time.perf_counter() - t
    parent = Checkpoint.open(path)
    cfg = TrainConfig(model=str(path), run_dir=str(work / "run"), seq_len=seq_len, global_batch=1, micro_batch=1,
                      precision="bf16", activation_checkpointing="full")
    plan = resolve(cfg.precision, cfg.activation_checkpointing, False, device, 1)
    _, _, device, started = setup_distributed(need_group=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # (a) used this device before
    try:
        t = time.perf_counter()
        model = build_model(parent, plan, device)
        load_s = time.perf_counter() - t
        optimizers = build_optimizers(model, cfg.optimizer)
        batch = torch.randint(0, geometry["vocab"], (1, seq_len), generator=torch.Generator().manual_seed(0))
        seconds = []
        for _ in range(2):
            _sync(device)
            t = time.perf_counter()
            loss, _ = train_step(model, batch, optimizers, 1, cfg.grad_clip, device, plan.fsdp)
            _sync(device)
            seconds.append(time.perf_counter() - t)
        measured = peak_memory(device)
        peak = measure_peak_flops(parent.config, seq_len, plan.dtype, device)
    finally:
        if started:
            torch.distributed.destroy_process_group()
    predicted = plan_memory(parent.config, cfg, 1, device.type)
    tokens_per_s = seq_len / seconds[1]
    used = measured.get("device", measured["host"])
    planned = predicted.peak if device.type == "cuda" else predicted.total
    return {"parameters": parent.num_parameters(), "geometry": geometry, "seq_len": seq_len, "loss": loss,
            "checkpoint_write_s": write_s, "load_s": load_s, "step_s": seconds, "tokens_per_s": tokens_per_s,
            "peak_flops": peak, "mfu": mfu(tokens_per_s, flops_per_token(parent.config, seq_len), peak),
            "peak_memory_gib": used / 2**30, "planned_gib": planned / 2**30, "measured_over_planned": used / planned,
            "memory_measure": "torch.cuda.max_memory_allocated vs plan without runtime" if device.type == "cuda"
            else "VmHWM vs plan total (host)", "plan": {k: v / 2**30 for k, v in predicted.rows()}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="Tiny shapes: runs on CPU in seconds (tests use it).")
    parser.add_argument("--seq-len", type=int, default=None, help="Tokens per sequence (default 8192; smoke 256).")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check.json"), help="JSON report path.")
    args = parser.parse_args(argv)
    from growth.foundation.atomic import write_json

    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if device.type != "cuda" and not args.smoke:
        parser.error("no GPU here; run with --smoke for the tiny version")
    start = time.perf_counter()
    report: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                    or "cpu", "torch": torch.__version__, "smoke": args.smoke}
    import transformers

    report["transformers"] = transformers.__version__
    report["muon"] = check_muon(SMOKE_LAYER if args.smoke else CARD_LAYER, device)
    print(f"(a) Muon bf16 vs torch.optim.Muon: max relative update difference {report['muon']['max_rel_diff']:.2e}, "
          f"step {report['muon']['step_ms_growbench']:.1f} ms vs {report['muon']['step_ms_torch']:.1f} ms "
          f"(ratio {report['muon']['ratio']:.2f})")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        step = check_step(SMOKE if args.smoke else GROWN, args.seq_len or (256 if args.smoke else 8192), device,
                          Path(tmp))
    report["fsdp_step"] = step
    print(f"(b) FSDP2 step, {step['parameters'] / 1e9:.2f}B parameters, seq_len {step['seq_len']}: "
          f"{step['tokens_per_s']:,.0f} tokens/s, MFU {step['mfu']:.1%}, peak memory "
          f"{step['peak_memory_gib']:.2f} GiB vs planned {step['planned_gib']:.2f} GiB "
          f"(x{step['measured_over_planned']:.2f})")
    report["seconds"] = time.perf_counter() - start
    write_json(args.out, report)
    print(f"report: {args.out} ({report['seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
