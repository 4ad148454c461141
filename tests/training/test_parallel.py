"""Parallelism and loading on the tiny model: the meta-device build loads exactly what from_pretrained does,
activation checkpointing leaves the losses unchanged, bf16 is FSDP2's policy over fp32 master weights, compile
matches eager, and tokens/s + MFU reach metrics.jsonl."""

from __future__ import annotations

import json

import pytest
import torch
from traintest import losses, write_config

from growth.checkpoint import Checkpoint
from growth.foundation.errors import ConfigError
from training.config import load_config
from training.loading import read_rows, row_range
from training.parallel import parse_activation_checkpointing, resolve, setup_distributed
from training.trainer import build_model, train


def test_meta_build_loads_what_from_pretrained_loads(tiny_model):
    from transformers import AutoModelForCausalLM

    ours = build_model(Checkpoint.open(tiny_model), resolve("fp32", "none", False, torch.device("cpu"), 1),
                       torch.device("cpu"))
    ref = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight  # the fixture ties them
    ref_sd = ref.state_dict()
    for name, value in ours.state_dict().items():
        assert torch.equal(value, ref_sd[name]), name
    for name, buf in ref.named_buffers():
        assert torch.equal(dict(ours.named_buffers())[name], buf), name
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    assert torch.equal(ours(ids).logits, ref.eval()(ids).logits)


def test_row_ranges_cover_every_row_once():
    for rows, world in [(10, 3), (2, 4), (4096, 8), (33, 2)]:
        ranges = [row_range(rows, world, r) for r in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == rows
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert [b - a for a, b in ranges] == [len(c) for c in torch.arange(rows).chunk(world)] + \
            [0] * (world - len(torch.arange(rows).chunk(world)))


def test_read_rows_is_a_slice_of_read(tiny_model):
    ckpt = Checkpoint.open(tiny_model)
    name = "model.layers.1.mlp.down_proj.weight"
    assert torch.equal(read_rows(ckpt, name, 17, 60), ckpt.read(name)[17:60])
    assert read_rows(ckpt, name, 5, 5).shape == (0, 256)


def test_activation_checkpointing_keeps_losses(tmp_path, tiny_model):
    runs = {}
    for name, ac in [("none", "none"), ("full", "full"), ("every2", {"every_n": 2})]:
        train(load_config(write_config(tmp_path, tiny_model, name, max_steps=10, activation_checkpointing=ac,
                                       checkpoint={"every": 10})))
        runs[name] = losses(tmp_path / name)
    for name in ("full", "every2"):
        rel = max(abs(a - b) / b for a, b in zip(runs[name], runs["none"]))
        print(f"activation checkpointing {name}: max relative loss difference {rel:.1e} over 10 steps")
        assert rel <= 1e-6
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1 for r in rows)


def test_checkpointing_flags_per_layer(tiny_model):
    for value, expected in [("full", [True] * 4), ({"every_n": 2}, [True, False, True, False]),
                            ("none", [False] * 4)]:
        model = build_model(Checkpoint.open(tiny_model), resolve("fp32", value, False, torch.device("cpu"), 1),
                            torch.device("cpu"), load=False)
        assert [layer.gradient_checkpointing for layer in model.model.layers] == expected


def test_activation_checkpointing_setting_errors(tmp_path, tiny_model):
    assert [parse_activation_checkpointing(v) for v in ("none", "full", {"every_n": 3})] == [0, 1, 3]
    for bad in ("some", {"every_n": 0}, {"every": 2}, 2):
        with pytest.raises(ConfigError, match="activation_checkpointing must be none, full or"):
            load_config(write_config(tmp_path, tiny_model, activation_checkpointing=bad))


def test_bf16_is_fsdp2_mixed_precision_over_fp32_master_weights(tiny_model):
    from torch.distributed.tensor import DTensor

    plan = resolve("bf16", "none", False, torch.device("cpu"), 1)
    assert plan.fsdp and plan.dtype == torch.bfloat16
    _, _, device, started = setup_distributed(need_group=True)
    try:
        model = build_model(Checkpoint.open(tiny_model), plan, device)
        seen = {}
        proj = model.model.layers[0].self_attn.q_proj
        proj.register_forward_hook(lambda m, i, o: seen.update(weight=m.weight.dtype, out=o.dtype))
        ids = torch.randint(0, 1000, (2, 16), generator=torch.Generator().manual_seed(0))
        model(input_ids=ids, labels=ids).loss.backward()
        assert seen == {"weight": torch.bfloat16, "out": torch.bfloat16}  # all-gathered and computed in bf16
        for name, p in model.named_parameters():
            assert isinstance(p, DTensor) and p.dtype == torch.float32, name  # sharded fp32 master weights
            assert p.grad.dtype == torch.float32, name  # reduced in fp32
    finally:
        if started:
            torch.distributed.destroy_process_group()


def test_embedding_and_head_are_fsdp_units_of_their_own(tmp_path, tiny_model):
    """Untied: the embedding and [final norm, lm_head] are FSDP2 units (torchtitan's); tied, both stay in the root."""
    from torch.distributed.fsdp import FSDPModule

    from growth.fixture import TinySpec, make_tiny
    from training.loss import LMHeadLoss

    untied = make_tiny(tmp_path / "untied", TinySpec(tied=False))
    plan = resolve("bf16", "none", False, torch.device("cpu"), 1)
    _, _, device, started = setup_distributed(need_group=True)
    try:
        for path, own_units in [(untied, True), (tiny_model, False)]:
            model = build_model(Checkpoint.open(path), plan, device, load=False)
            assert isinstance(model, FSDPModule) and isinstance(model.model.layers[0], FSDPModule)
            assert isinstance(model.model.embed_tokens, FSDPModule) == own_units
            assert isinstance(model.lm_head, FSDPModule) == isinstance(model.model.norm, FSDPModule) == own_units
            assert isinstance(model.lm_head, LMHeadLoss)  # the chunked loss head, under the same name
    finally:
        if started:
            torch.distributed.destroy_process_group()


def test_bf16_run_trains_close_to_fp32(tmp_path, tiny_model):
    train(load_config(write_config(tmp_path, tiny_model, "fp32", max_steps=3)))
    train(load_config(write_config(tmp_path, tiny_model, "bf16", max_steps=3, precision="bf16")))
    for a, b in zip(losses(tmp_path / "bf16"), losses(tmp_path / "fp32")):
        assert abs(a - b) <= 1e-2 * b


def test_given_peak_sets_mfu(tmp_path, tiny_model):
    from training.throughput import flops_per_token

    train(load_config(write_config(tmp_path, tiny_model, max_steps=2, peak_tflops=0.001)))
    per_token = flops_per_token(Checkpoint.open(tiny_model).config, 32)
    for row in (json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()):
        assert row["mfu"] == pytest.approx(row["tokens_per_s"] * per_token / 1e9)


@pytest.mark.slow
def test_compile_matches_eager(tmp_path, tiny_model):
    train(load_config(write_config(tmp_path, tiny_model, "eager", max_steps=3)))
    train(load_config(write_config(tmp_path, tiny_model, "compiled", max_steps=3, compile=True,
                                   activation_checkpointing="full")))
    for a, b in zip(losses(tmp_path / "compiled"), losses(tmp_path / "eager")):
        assert abs(a - b) <= 1e-5 * b
