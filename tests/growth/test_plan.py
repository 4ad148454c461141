"""Plans: shipped plan by name, YAML validation, architectures as data, and the card's dry-run accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from growth.architecture import available, load
from growth.foundation.errors import ConfigError, PlanError
from growth.grow import plan_growth, read_config_file
from growth.plan import load_plan, parse_plan

QWEN3_4B = Path(__file__).resolve().parents[2] / "growth" / "plans" / "qwen3-4b-base.config.json"


def test_shipped_plan_by_name():
    plan = load_plan("openseek-mid-v1")
    assert [s.op for s in plan.steps] == ["untie", "width", "depth"]
    width, depth = plan.steps[1].params, plan.steps[2].params
    assert (width.intermediate_size, width.snr_db, width.noise) == (19456, 10, "hypercloning")
    assert (depth.start, depth.end, depth.order, depth.init) == (14, 34, "block", "copy")


def test_card_accounting_on_meta_device():
    grown = plan_growth(read_config_file(QWEN3_4B), "openseek-mid-v1")
    assert [n for _, n in grown.stage_counts()] == [4_022_468_096, 7_101_021_696, 10_613_858_816]
    assert [s.after.num_parameters for s in grown.steps] == [4_411_424_256, 7_101_021_696, 10_613_858_816]
    config = grown.final.config
    assert (config["num_hidden_layers"], config["intermediate_size"], config["tie_word_embeddings"]) == (56, 19456,
                                                                                                          False)
    assert config["max_window_layers"] == 56


def test_dry_run_command_prints_the_card_numbers(cli, capsys):
    assert cli("grow", "--dry-run", "--config", str(QWEN3_4B), "--plan", "openseek-mid-v1") == 0
    output = capsys.readouterr().out
    assert "4,022,468,096 -> 7,101,021,696 -> 10,613,858,816" in output
    grown_config = json.loads(output[output.index("{"):])
    assert grown_config["num_hidden_layers"] == 56 and grown_config["intermediate_size"] == 19456


@pytest.mark.parametrize("model_type, extra", [
    ("qwen2", {"max_window_layers": 6}),
    ("llama", {"attention_bias": True, "mlp_bias": True}),
    ("mistral", {"sliding_window": 64}),
    ("qwen3", {"attention_bias": True}),
])
def test_every_architecture_plans_on_meta(model_type, extra):
    config = {"model_type": model_type, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 6,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300, "tie_word_embeddings": True,
              **extra}
    plan = parse_plan({"steps": [{"op": "untie"}, {"op": "width", "intermediate_size": 150, "snr_db": 20},
                                 {"op": "depth", "start": 2, "end": 5, "init": "identity"}]}, "t.yaml")
    grown = plan_growth(config, plan)
    assert grown.final.config["num_hidden_layers"] == 9 and grown.final.config["intermediate_size"] == 150
    assert len({model_type} & set(available())) == 1
    assert load(model_type).model_type == model_type


def test_unknown_plan_name_suggests():
    with pytest.raises(ConfigError, match="Did you mean openseek-mid-v1"):
        load_plan("openseek-mid")


def test_missing_plan_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_plan(tmp_path / "nope.yaml")


@pytest.mark.parametrize("raw, match", [
    ([1, 2], "must be a mapping"),
    ({"steps": []}, "non-empty list"),
    ({"steps": [{"op": "widen"}]}, "Did you mean width"),
    ({"steps": [{"factor": 2}]}, "'op' key"),
    ({"steps": [{"op": "untie"}], "seeds": 3}, "unknown key"),
    ({"steps": [{"op": "untie"}], "seed": "x"}, "seed must be an integer"),
])
def test_plan_validation(raw, match):
    with pytest.raises(ConfigError, match=match):
        parse_plan(raw, "plan.yaml")


def test_invalid_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [op: untie\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_plan(bad)


def test_unknown_architecture():
    with pytest.raises(PlanError, match="unknown architecture 'gpt2'.*qwen3"):
        plan_growth({"model_type": "gpt2", "n_layer": 2}, "openseek-mid-v1")


def test_dry_run_from_a_checkpoint_reads_no_weights(tiny_model, tmp_path, monkeypatch, cli, capsys):
    from growth.checkpoint import Checkpoint

    def no_reads(self, name):
        raise AssertionError(f"dry run read {name}")

    monkeypatch.setattr(Checkpoint, "read", no_reads)
    plan = tmp_path / "p.yaml"
    plan.write_text("steps: [{op: untie}, {op: width, factor: 2, snr_db: 10}, {op: depth, start: 1, end: 3}]\n")
    assert cli("grow", str(tiny_model), "--dry-run", "--show-ops", "--plan", str(plan)) == 0
    output = capsys.readouterr().out
    assert "722,304 -> 853,376 -> 1,246,592 -> 1,738,752" in output
    assert "split_columns(layer=3, d=256, d_new=512, noise=hypercloning, snr_db=10)" in output
    assert "model.layers.5.mlp.down_proj.weight [128, 512] float32 = copy <- model.layers.3.mlp.down_proj" \
        in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]
