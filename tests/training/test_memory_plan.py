"""The memory planner: its activation model against tensors autograd really saves (transformers' loss and the chunked
one), its parameter accounting, gradient accumulation at its real cost, the --plan-memory table (exit 1 when it does
not fit), the refusal of a run that cannot fit, and (slow) its prediction against the peak RSS of a 2-process FSDP2
run of a model over 1 GiB accumulating 4 micro-batches per rank."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys

import pytest
import torch
from traintest import REPO, cli, write_config

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny, qwen3_config
from growth.foundation.errors import ConfigError
from growth.foundation.units import GiB, parse_bytes
from training.config import TrainConfig, load_config
from training.loss import LossConfig, apply_loss
from training.memory_plan import layer_activation_bytes, outer_activation_bytes, plan_memory

TOKENS = (2, 64)


def saved_bytes_per_token(config: dict, dtype: torch.dtype, loss: str) -> float:
    """Bytes autograd saves for backward per token (parameters excluded), measured with saved-tensor hooks."""
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen3", **kwargs), dtype=dtype)
    apply_loss(model, LossConfig(impl=loss))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(0, 300, TOKENS, generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    return sum(storages.values()) / math.prod(TOKENS)


@pytest.mark.parametrize("loss", ["chunked", "full"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("geometry", [dict(hidden=128, ffn=384, heads=4, kv_heads=2, head_dim=32),
                                      dict(hidden=96, ffn=512, heads=6, kv_heads=3, head_dim=16, vocab=700)])
def test_activation_model_matches_saved_tensors(dtype, geometry, loss):
    one, two = (qwen3_config(TinySpec(layers=n, tied=False, **geometry), 0, 0) for n in (1, 2))
    measured_one, measured_two = (saved_bytes_per_token(c, dtype, loss) for c in (one, two))
    layer = measured_two - measured_one
    d = dtype.itemsize
    assert layer == pytest.approx(layer_activation_bytes(one, d), rel=0.01)
    rotary = 2 * geometry["head_dim"] * d / TOKENS[0]  # cos and sin, one per position (not per token)
    assert measured_one - layer == pytest.approx(outer_activation_bytes(one, d, loss) + rotary, rel=0.01)


def test_parse_bytes():
    assert parse_bytes("80GiB") == 80 * 2**30 and parse_bytes("80 GB") == 80 * 10**9
    assert parse_bytes("512MiB") == 2**29 and parse_bytes("1.5TB") == 1.5e12
    with pytest.raises(ConfigError, match="not a number with a unit"):
        parse_bytes("lots")


def test_plan_counts_parameters_and_states(tiny_model):
    parent = Checkpoint.open(tiny_model)
    cfg = TrainConfig(model=str(tiny_model), run_dir="r")
    one = plan_memory(parent.config, cfg, 1, "cpu")
    assert one.parameters == one.gradients == 4 * parent.num_parameters()
    assert one.muon_state / 4 + one.adamw_state / 8 == parent.num_parameters()
    assert one.all_gather == 0 and one.runtime < one.total
    two = plan_memory(parent.config, cfg, 2, "cpu")  # every tensor of the fixture has an even number of rows
    assert two.parameters == one.parameters / 2 and two.muon_state == one.muon_state / 2 and two.all_gather > 0
    assert two.activations == one.activations  # per rank, per micro-batch
    gpu = plan_memory(parent.config, cfg, 2, "cuda")
    assert gpu.dtype == "bfloat16" and gpu.activations_none < two.activations_none
    ac = plan_memory(parent.config, dataclasses.replace(cfg, activation_checkpointing="full"), 2, "cpu")
    assert ac.activations == ac.activations_full < ac.activations_none == two.activations


def test_accumulation_is_counted_at_its_cost(tiny_model):
    """Reduce-scattering every micro-batch holds the gradient shards; last_micro_batch holds every parameter's whole
    gradient between micro-batches (fp32, or bf16 with reduce_dtype bfloat16)."""
    config = Checkpoint.open(tiny_model).config
    n = Checkpoint.open(tiny_model).num_parameters()
    cfg = TrainConfig(model=str(tiny_model), run_dir="r", seq_len=64, global_batch=8, micro_batch=1)
    one = plan_memory(config, dataclasses.replace(cfg, global_batch=2), 2, "cuda")
    every = plan_memory(config, cfg, 2, "cuda")
    last = plan_memory(config, dataclasses.replace(cfg, gradient_sync="last_micro_batch"), 2, "cuda")
    half = plan_memory(config, dataclasses.replace(cfg, gradient_sync="last_micro_batch", reduce_dtype="bfloat16"),
                       2, "cuda")
    assert (one.accumulation, every.accumulation) == (1, 4)
    assert every.accumulated == 0 and last.accumulated == 4 * n and half.accumulated == 2 * n
    assert every.peak - one.peak == every.gradients  # the shards, held from the first micro-batch on
    assert last.peak - one.peak == last.accumulated


def grown_config(tmp_path):
    """The card's grown config.json as the planner gets it: `growbench grow --dry-run --write-config FILE`."""
    from growth.grow import plan_growth, read_config_file

    path = tmp_path / "grown.json"
    proc = subprocess.run(cli("grow", "--dry-run", "--config", "qwen3-4b-base", "--plan", "openseek-mid-v1",
                              "--write-config", str(path)), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(f"wrote {path}")
    seed = read_config_file(REPO / "growth" / "plans" / "qwen3-4b-base.config.json")
    assert json.loads(path.read_text()) == plan_growth(seed, "openseek-mid-v1").final.config
    return path


def plan_the_card(tmp_path, gpus: str, gpu_memory: str) -> subprocess.CompletedProcess:
    """growbench train --plan-memory for the shipped card config and the grown model's config."""
    return subprocess.run(cli("train", "--config", "training/configs/openseek-mid-v1.yaml", "--plan-memory",
                              "--gpus", gpus, "--gpu-memory", gpu_memory, "--model-config",
                              str(grown_config(tmp_path))), cwd=REPO, capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_plan_memory_table_for_the_card(tmp_path):
    proc = plan_the_card(tmp_path, "64,128,256", "80GiB")
    assert proc.returncode == 0, proc.stderr
    assert "64 GPUs" in proc.stdout and "256 GPUs" in proc.stdout
    params = re.search(r"parameters \(fp32 shards\)\W+([\d.]+) GiB\W+([\d.]+) GiB\W+([\d.]+) GiB", proc.stdout)
    assert [float(x) for x in params.groups()] == [pytest.approx(10.61e9 * 4 / n / GiB, abs=0.006)
                                                   for n in (64, 128, 256)]
    assert re.search(r"fits in 80.00 GiB\W+yes\W+yes\W+yes", proc.stdout)  # the shipped config checkpoints
    assert re.search(r"micro-batches per GPU and step\W+32\W+16\W+8\W", proc.stdout)
    assert re.search(r"whole gradients between micro-batches \(every_micro_batch\)\W+0.00 GiB", proc.stdout)
    total = re.search(r"total \(peak\)\W+([\d.]+) GiB", proc.stdout)
    assert 8 < float(total.group(1)) < 40  # fits a 40 GB card
    assert "Muon per step on 64 GPUs" in proc.stdout


def test_plan_memory_exits_1_when_a_count_does_not_fit(tmp_path):
    proc = plan_the_card(tmp_path, "64,256", "10.5GiB")
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"fits in 10.50 GiB\W+NO\W+yes", proc.stdout)
    assert proc.stderr.strip() == "the plan does not fit the GPU's memory at every count (NO above)"


def test_plan_memory_needs_a_model_config(tmp_path):
    proc = subprocess.run(cli("train", "--config", "training/configs/openseek-mid-v1.yaml", "--plan-memory"),
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no config.json at runs/openseek-mid-v1-grown; give the model's config with --model-config "
        "CONFIG_JSON (e.g. the one `growbench grow --dry-run ... --write-config FILE` writes)"]


def test_plan_memory_names_a_missing_model_config_key(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "qwen3", "hidden_size": 256}))
    proc = subprocess.run(cli("train", "--config", "training/configs/openseek-mid-v1.yaml", "--plan-memory",
                              "--model-config", str(config)), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: model config has no 'intermediate_size', which the FLOP and memory figures need"]


def test_train_refuses_a_run_that_cannot_fit(tmp_path, tiny_model):
    over = dict(seq_len=8192, global_batch=4, micro_batch=4)
    cfg = load_config(write_config(tmp_path, tiny_model, **over))
    config = Checkpoint.open(tiny_model).config
    none = plan_memory(config, cfg, 1, "cpu")
    full = plan_memory(config, dataclasses.replace(cfg, activation_checkpointing="full"), 1, "cpu")
    budget = (none.total + full.total) // 2
    path = write_config(tmp_path, tiny_model, **over, device_memory=f"{budget}B")
    proc = subprocess.run(cli("train", "--config", str(path)), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: the memory planner predicts ") and "per process" in line
    assert line.endswith(f"set activation_checkpointing: full (then {full.total / GiB:.2f} GiB)")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_planner_predicts_peak_rss_of_two_processes(tmp_path):
    """A 1.09 GB fp32 model (big untied vocab + 4 layers), 2 processes on gloo, AC off, 4 micro-batches per rank:
    each rank's peak RSS (VmHWM) lies within 15% of the planner's host-memory prediction."""
    model = make_tiny(tmp_path / "model", TinySpec(layers=4, hidden=1024, ffn=4096, heads=8, kv_heads=4,
                                                   head_dim=128, vocab=102400, tied=False))
    assert Checkpoint.open(model).total_bytes >= GiB
    config = write_config(tmp_path, model, seq_len=64, global_batch=8, micro_batch=1, max_steps=2, threads=None,
                          checkpoint={"every": 2})
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "suite.cli", "train", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    memory = json.loads((tmp_path / "run" / "memory.json").read_text())
    plan = memory["plan_total"]
    measured = [rank["host"] for rank in memory["measured"]]
    print(f"planner {plan / GiB:.2f} GiB per rank; measured peak RSS {[round(m / GiB, 2) for m in measured]} GiB")
    assert len(measured) == 2 and memory["plan"]["accumulation"] == 4
    for m in measured:
        assert abs(m - plan) <= 0.15 * plan
