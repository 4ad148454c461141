"""Train config loading, param-group partition and the lr schedule: the pure parts, no model weights."""

from __future__ import annotations

import pytest
import torch

from growth.foundation.errors import ConfigError
from training.config import load_config
from training.param_groups import Rule, build_optimizers, default_rules, partition
from training.schedule import ScheduleConfig, lr_factor


def qwen_like() -> torch.nn.Module:
    m = torch.nn.Module()
    m.embed_tokens = torch.nn.Embedding(10, 8)
    m.q_proj = torch.nn.Linear(8, 8, bias=True)
    m.input_layernorm = torch.nn.LayerNorm(8)
    return m


def test_default_rules_split_matrices_from_embeddings_and_norms():
    named = list(qwen_like().named_parameters())
    groups = {tuple(r.patterns): names for r, names in partition(named, default_rules())}
    assert groups[("*embed_tokens*", "*lm_head*")] == ["embed_tokens.weight"]
    assert groups[("*norm*", "*.bias")] == ["q_proj.bias", "input_layernorm.weight", "input_layernorm.bias"]
    assert groups[("*",)] == ["q_proj.weight"]


def test_optimizers_get_their_parameters():
    muon, adamw = build_optimizers(qwen_like(), load_config_obj().optimizer)
    assert [p.shape for g in muon.param_groups for p in g["params"]] == [torch.Size([8, 8])]
    assert sum(len(g["params"]) for g in adamw.param_groups) == 4
    assert {g["weight_decay"] for g in adamw.param_groups} == {0.1, 0.0}


def load_config_obj():
    from training.config import TrainConfig

    return TrainConfig(model="m", run_dir="r")


def test_unmatched_rule_and_parameter_are_errors():
    named = list(qwen_like().named_parameters())
    with pytest.raises(ConfigError, match=r"rule \['\*typo\*'\].*matches no parameter"):
        partition(named, [Rule(["*typo*"], "adamw"), Rule(["*"], "muon")])
    with pytest.raises(ConfigError, match="parameter embed_tokens.weight .* matches no optimizer rule"):
        partition(named, [Rule(["*proj*", "*norm*"], "adamw")])


def test_schedule_warmup_then_cosine_to_floor():
    cfg = ScheduleConfig(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, 110, cfg) == pytest.approx(0.1)
    assert lr_factor(9, 110, cfg) == pytest.approx(1.0)
    assert lr_factor(60, 110, cfg) == pytest.approx(0.55)
    assert lr_factor(110, 110, cfg) == pytest.approx(0.1)


def test_config_rejects_unknown_and_bad_values(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: m\nrun_dir: r\noptimizer: {lr: 0.1, momentun: 0.9}\n")
    with pytest.raises(ConfigError, match=r"optimizer: unknown key\(s\) momentun"):
        load_config(f)
    f.write_text("model: m\nrun_dir: r\nglobal_batch: 6\nmicro_batch: 4\n")
    with pytest.raises(ConfigError, match="global_batch .6. must be a multiple of micro_batch"):
        load_config(f)
    f.write_text("run_dir: r\n")
    with pytest.raises(ConfigError, match="missing required key.*model"):
        load_config(f)
    f.write_text("model: m\nrun_dir: r\nseq_len: many\n")
    with pytest.raises(ConfigError, match="seq_len: expected int"):
        load_config(f)


def test_shipped_configs_load():
    from pathlib import Path

    for f in sorted((Path(__file__).resolve().parents[2] / "training" / "configs").glob("*.yaml")):
        cfg = load_config(f)
        assert cfg.global_batch % cfg.micro_batch == 0
