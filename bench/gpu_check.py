"""GPU check, ready to run on one GPU in under 8 minutes: bf16 Muon against torch.optim.Muon, FSDP2 training steps
(world 1) of a >= 1B-parameter synthetic grown Qwen3 at seq_len 8192 accumulating 4 micro-batches, with activation
checkpointing, the bf16 mixed-precision policy and the chunked loss, and the loss itself at the card's vocabulary;
writes a JSON report, printing measured against planned peak memory.

    python -m bench.gpu_check --out DIR               # on a GPU: DIR/gpu_check.json; commit it as
                                                      #   bench/reports/gpu_check_<gpu>_<yyyymm>.json
    python -m bench.gpu_check --smoke --out DIR       # a tiny version that runs anywhere (CPU: gloo, fp32 NS)

Needs only torch, transformers, safetensors (and pyyaml, tokenizers, which transformers brings) and this project:
nothing on its import path imports lm-eval, vLLM, DuckDB or pandas.

(a) Muon: growbench's Muon with bf16 Newton-Schulz and torch.optim.Muon(adjust_lr_fn="match_rms_adamw") on the
    matrices of one grown layer of the card's model (q, k, v, o, gate, up, down of hidden 2560, FFN 19456), the same
    gradients for 10 steps: the largest relative difference of the updates (bf16 rounding: <= 1e-2) and the median
    step time of each, as a ratio (target <= 1.1).
(b) Training steps: a synthetic grown Qwen3 (untied embeddings, doubled FFN: 12 layers, hidden 2048, FFN 12288,
    vocab 151936; 1.68B parameters) written as a bf16 checkpoint, loaded shard-wise (training.loading) into FSDP2
    (embedding, layers and [norm, lm_head] as units) with MixedPrecisionPolicy(bf16, fp32), full activation
    checkpointing and the chunked loss, Muon + AdamW; 4 sequences of 8192 tokens per step, one per micro-batch, each
    micro-batch's gradients reduce-scattered into the sharded ones. Reports the second step's tokens/s and MFU
    (against a matmul peak measured on the model's shapes) and the peak GPU memory allocated against the memory
    planner's prediction for the same run.
(c) The loss alone on 8192 tokens of that model's head (hidden 2048, vocab 151936, bf16): chunked (and Liger's fused
    linear cross-entropy where liger-kernel imports) against transformers' loss over the full logits: the loss and
    gradient differences, and each one's peak memory above its inputs against the planner's loss figure.
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


def check_step(geometry: dict, seq_len: int, device: torch.device, work: Path, accumulation: int = 4) -> dict:
    """Two FSDP2 steps (world 1, bf16 policy, full activation checkpointing, `accumulation` micro-batches of one
    sequence) on a synthetic grown Qwen3; the second one is measured."""
    from growth.checkpoint import Checkpoint
    from growth.fixture import TinySpec, make_tiny
    from training.config import TrainConfig
    from training.memory_plan import plan_memory
    from training.parallel import setup_distributed
    from training.param_groups import build_optimizers
    from training.throughput import flops_per_token, measure_peak_flops, mfu
    from training.trainer import build_model, peak_memory, train_step

    t = time.perf_counter()
    path = make_tiny(work / "grown", TinySpec(**geometry, tied=False, dtype="bfloat16", max_positions=seq_len,
                                              shard_size=2**30))
    write_s = time.perf_counter() - t
    parent = Checkpoint.open(path)
    cfg = TrainConfig(model=str(path), run_dir=str(work / "run"), seq_len=seq_len, global_batch=accumulation,
                      micro_batch=1, precision="bf16", activation_checkpointing="full")
    plan = cfg.parallelism(device, 1)
    _, _, device, started = setup_distributed(need_group=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # (a) used this device before
    try:
        t = time.perf_counter()
        model = build_model(parent, plan, device)
        load_s = time.perf_counter() - t
        optimizers = build_optimizers(model, cfg.optimizer)
        batch = torch.randint(0, geometry["vocab"], (accumulation, seq_len), generator=torch.Generator().manual_seed(0))
        seconds = []
        for _ in range(2):
            _sync(device)
            t = time.perf_counter()
            loss, _ = train_step(model, batch, optimizers, 1, cfg.grad_clip, device)
            _sync(device)
            seconds.append(time.perf_counter() - t)
        measured = peak_memory(device)
        peak = measure_peak_flops(parent.config, seq_len, plan.dtype, device)
    finally:
        if started:
            torch.distributed.destroy_process_group()
    predicted = plan_memory(parent.config, cfg, 1, device.type)
    tokens_per_s = accumulation * seq_len / seconds[1]
    used = measured.get("device", measured["host"])
    planned = predicted.peak if device.type == "cuda" else predicted.total
    return {"parameters": parent.num_parameters(), "geometry": geometry, "seq_len": seq_len,
            "micro_batches": accumulation, "loss": loss, "peak_phase": predicted.peak_phase,
            "checkpoint_write_s": write_s, "load_s": load_s, "step_s": seconds, "tokens_per_s": tokens_per_s,
            "peak_flops": peak, "mfu": mfu(tokens_per_s, flops_per_token(parent.config, seq_len), peak),
            "peak_memory_gib": used / 2**30, "planned_gib": planned / 2**30, "measured_over_planned": used / planned,
            "memory_measure": "torch.cuda.max_memory_allocated vs plan without runtime" if device.type == "cuda"
            else "VmHWM vs plan total (host)", "plan": {k: v / 2**30 for k, v in predicted.rows()}}


def check_loss(hidden: int, vocab: int, tokens: int, device: torch.device) -> dict:
    """The chunked loss (and Liger's where it imports on a GPU) against transformers' on one micro-batch of the
    head: loss and gradient differences, time, and on a GPU the peak memory above the inputs vs the planner's."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    from growth.foundation.errors import ConfigError
    from training import loss as lib

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gen = torch.Generator().manual_seed(0)
    weight = (torch.randn(vocab, hidden, generator=gen) * 0.02).to(device, dtype)
    states = torch.randn(1, tokens, hidden, generator=gen).to(device, dtype)
    labels = torch.randint(0, vocab, (1, tokens), generator=gen).to(device)
    impls = {"full": lambda h, w: ForCausalLMLoss(h @ w.t(), labels, vocab),
             "chunked": lambda h, w: lib.chunked_cross_entropy(h, w, labels, lib.LossConfig().chunk_tokens)}
    liger_absent = None
    try:
        lib.check_loss(lib.LossConfig(impl="liger"), device)
        impls["liger"] = lambda h, w: lib.liger_cross_entropy(h, w, labels)
    except ConfigError as e:  # no GPU or no liger-kernel: reported, not fatal
        liger_absent = str(e)
    out: dict = {"tokens": tokens, "hidden": hidden, "vocab": vocab, "dtype": str(dtype), "liger_absent": liger_absent}
    ref = None
    for name, fn in impls.items():
        h, w = states.clone().requires_grad_(), weight.clone().requires_grad_()
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        t = time.perf_counter()
        loss = fn(h, w)
        loss.backward()
        _sync(device)
        row = {"loss": loss.item(), "seconds": time.perf_counter() - t}
        if device.type == "cuda":
            row["peak_gib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**30
            planned = lib.loss_transient_bytes(lib.LossConfig(impl=name), tokens, hidden, vocab, dtype.itemsize, "cuda")
            planned += dtype.itemsize * vocab * hidden + (4 * vocab * tokens if name == "full" else 0)
            row["planned_gib"] = planned / 2**30  # the transient, the weight's gradient, the saved log-softmax
        if ref is None:
            ref = loss.item(), h.grad.float(), w.grad.float()
        else:
            row["loss_rel_diff"] = abs(loss.item() - ref[0]) / abs(ref[0])
            row["grad_rel_diff"] = max(((g.float() - r).norm() / r.norm()).item()
                                       for g, r in ((h.grad, ref[1]), (w.grad, ref[2])))
        out[name] = row
        del h, w, loss
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="Tiny shapes: runs on CPU in seconds (tests use it).")
    parser.add_argument("--seq-len", type=int, default=None, help="Tokens per sequence (default 8192; smoke 256).")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"),
                        help="Folder for the report (gpu_check.json).")
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
    print(f"(b) FSDP2 steps, {step['parameters'] / 1e9:.2f}B parameters, {step['micro_batches']} micro-batches of "
          f"seq_len {step['seq_len']}: {step['tokens_per_s']:,.0f} tokens/s, MFU {step['mfu']:.1%}; peak memory "
          f"measured {step['peak_memory_gib']:.2f} GiB vs planned {step['planned_gib']:.2f} GiB "
          f"(x{step['measured_over_planned']:.2f}; planner's peak phase: {step['peak_phase']})")
    geometry = SMOKE if args.smoke else GROWN
    report["loss"] = loss = check_loss(geometry["hidden"], geometry["vocab"], step["seq_len"], device)
    for name in ("chunked", "liger"):
        if name in loss:
            r = loss[name]
            memory = (f"; peak {r['peak_gib']:.2f} GiB vs planned {r['planned_gib']:.2f} GiB "
                      f"(transformers' {loss['full']['peak_gib']:.2f} vs {loss['full']['planned_gib']:.2f})"
                      if "peak_gib" in r else "")
            print(f"(c) {name} loss vs transformers' at {loss['tokens']} tokens x {loss['vocab']:,} vocab: loss "
                  f"{r['loss_rel_diff']:.1e}, gradients {r['grad_rel_diff']:.1e} relative; {r['seconds']:.2f} s vs "
                  f"{loss['full']['seconds']:.2f} s{memory}")
    if loss["liger_absent"]:
        print(f"(c) liger not run: {loss['liger_absent']}")
    report["seconds"] = time.perf_counter() - start
    write_json(args.out / "gpu_check.json", report)
    print(f"report: {args.out / 'gpu_check.json'} ({report['seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
