"""depth: layer order, copy/identity init, config rewrite reloaded through AutoConfig, range errors."""

from __future__ import annotations

import json

import pytest
import torch
from growtest import grow_in_memory, plan_of, read_all

from growth.foundation.errors import ConfigError, PlanError
from growth.operators.depth import DepthParams, layer_order

NAMES = ("self_attn.q_proj.weight", "self_attn.o_proj.weight", "self_attn.k_norm.weight", "mlp.down_proj.weight",
         "input_layernorm.weight")


def test_block_and_interleave_order():
    assert layer_order(5, DepthParams(1, 3)) == [(0, False), (1, False), (2, False), (1, True), (2, True),
                                                 (3, False), (4, False)]
    assert layer_order(4, DepthParams(1, 3, order="interleave")) == [(0, False), (1, False), (1, True), (2, False),
                                                                      (2, True), (3, False)]
    card = layer_order(36, DepthParams(14, 34))
    assert len(card) == 56 and [s for s, _ in card[34:54]] == list(range(14, 34))


@pytest.mark.parametrize("order", ["block", "interleave"])
def test_copy_init_duplicates_layers(tiny_model, order):
    before = read_all(tiny_model)
    grown, after, _ = grow_in_memory(tiny_model, {"op": "depth", "start": 1, "end": 3, "order": order})
    sources = [s for s, _ in layer_order(4, DepthParams(1, 3, order=order))]
    assert grown.final.config["num_hidden_layers"] == 6
    for new, src in enumerate(sources):
        for name in NAMES:
            assert torch.equal(after[f"model.layers.{new}.{name}"], before[f"model.layers.{src}.{name}"])
    assert not grown.steps[0].operator.preserves_function(grown.steps[0].config.params)


def test_identity_init_zeroes_what_writes_the_residual(tiny_model):
    before = read_all(tiny_model)
    grown, after, _ = grow_in_memory(tiny_model, {"op": "depth", "start": 0, "end": 2, "init": "identity"})
    for new, (src, is_copy) in enumerate(layer_order(4, DepthParams(0, 2, init="identity"))):
        for name in NAMES:
            got, want = after[f"model.layers.{new}.{name}"], before[f"model.layers.{src}.{name}"]
            if is_copy and name in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
                assert not got.any()
            else:
                assert torch.equal(got, want)
    assert grown.steps[0].operator.preserves_function(grown.steps[0].config.params)


def test_config_rewrite_reloads_in_transformers(tiny_model, tmp_path):
    from transformers import AutoConfig

    source = json.loads((tiny_model / "config.json").read_text())
    source["layer_types"] = ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]
    source["max_window_layers"] = 4
    (tmp_path / "src").mkdir()
    for f in tiny_model.iterdir():
        (tmp_path / "src" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "src" / "config.json").write_text(json.dumps(source))
    grown, _, _ = grow_in_memory(tmp_path / "src", {"op": "untie"}, {"op": "width", "factor": 2},
                                 {"op": "depth", "start": 1, "end": 3, "order": "interleave"})
    config = grown.final.config
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(config))
    loaded = AutoConfig.from_pretrained(tmp_path / "cfg")
    assert loaded.num_hidden_layers == 6
    assert loaded.intermediate_size == 512
    assert loaded.tie_word_embeddings is False
    assert loaded.max_window_layers == 6
    assert loaded.layer_types == ["full_attention", "sliding_attention", "sliding_attention", "full_attention",
                                  "full_attention", "sliding_attention"]


@pytest.mark.parametrize("start, end", [(3, 5), (-1, 2), (4, 5), (0, 9)])
def test_range_outside_layers(tiny_model, start, end):
    with pytest.raises(PlanError, match=r"outside the model's layers \[0, 4\)"):
        grow_in_memory(tiny_model, {"op": "depth", "start": start, "end": end})


@pytest.mark.parametrize("params, match", [
    ({"start": 2, "end": 2}, "must be greater than start"),
    ({"start": 3, "end": 1}, "must be greater than start"),
    ({"start": 1.5, "end": 3}, "integer layer index"),
    ({"start": 1}, "missing required key"),
    ({"start": 0, "end": 1, "order": "zigzag"}, "block, interleave"),
    ({"start": 0, "end": 1, "init": "random"}, "copy, identity"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        plan_of({"op": "depth", **params})
