"""--verify and loading: logits through transformers before/after every step, generation, other architectures."""

from __future__ import annotations

import pytest
import torch
from growtest import write_plan

from growth.grow import grow
from growth.verify import TOLERANCE

PRESERVING = ({"op": "untie"}, {"op": "width", "intermediate_size": 320, "snr_db": 10},
              {"op": "depth", "start": 1, "end": 3, "order": "interleave", "init": "identity"},
              {"op": "width", "factor": 2, "snr_db": 3})


def _greedy(path, ids: torch.Tensor) -> list[int]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    out = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    return out[0, ids.shape[1]:].tolist()


def test_function_preserving_steps_within_tolerance(tiny_model, tmp_path):
    result = grow(tiny_model, tmp_path / "out", write_plan(tmp_path / "p.yaml", *PRESERVING, seed=11), verify=True)
    checks = [s["verify"] for s in result.lineage["steps"]]
    assert [c["op"] for c in checks] == ["untie", "width", "depth", "width"]
    for c in checks:
        assert c["preserving"] and c["ok"] and c["relative"] <= TOLERANCE, c
    assert checks[1]["snr_db_measured"] and checks[3]["snr_db_measured"]
    assert result.lineage["steps"][2]["num_parameters_after"] > result.lineage["steps"][2]["num_parameters_before"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(result.path))
    ids = tok("The quick brown fox", return_tensors="pt").input_ids
    assert _greedy(result.path, ids) == _greedy(tiny_model, ids)


def test_copy_depth_and_plain_noise_report_their_change(tiny_model, tmp_path):
    plan = write_plan(tmp_path / "p.yaml", {"op": "width", "factor": 2, "snr_db": 10, "noise": "plain"},
                      {"op": "depth", "start": 1, "end": 3})
    checks = [s["verify"] for s in grow(tiny_model, tmp_path / "out", plan, verify=True).lineage["steps"]]
    for c in checks:
        assert not c["preserving"] and c["ok"] and c["relative"] > 1e-3, c


@pytest.mark.parametrize("model_type, extra", [
    ("qwen2", {}),
    ("llama", {"attention_bias": True, "mlp_bias": True}),
    ("mistral", {"tie_word_embeddings": False}),
])
def test_other_architectures_grow_and_verify(tmp_path, model_type, extra):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                  num_attention_heads=2, num_key_value_heads=1, head_dim=32, vocab_size=320,
                                  **({"tie_word_embeddings": True} | extra))
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)  # biases and norms random too, so every tensor kind is exercised
    model.save_pretrained(tmp_path / "src")
    steps = [{"op": "width", "intermediate_size": 150, "snr_db": 10},
             {"op": "depth", "start": 0, "end": 2, "init": "identity"}]
    if config.tie_word_embeddings:
        steps.insert(0, {"op": "untie"})
    result = grow(tmp_path / "src", tmp_path / "out", write_plan(tmp_path / "p.yaml", *steps), verify=True)
    for c in (s["verify"] for s in result.lineage["steps"]):
        assert c["ok"] and c["relative"] <= TOLERANCE, c
    grown = AutoConfig.from_pretrained(result.path)
    assert (grown.num_hidden_layers, grown.intermediate_size, grown.tie_word_embeddings) == (5, 150, False)


def test_cast_is_checked_apart_from_the_steps(tiny_model, tmp_path):
    plan = write_plan(tmp_path / "p.yaml", {"op": "width", "factor": 2, "snr_db": 10})
    record = grow(tiny_model, tmp_path / "out", plan, verify=True, dtype="bfloat16").lineage
    step = record["steps"][0]["verify"]
    assert step["preserving"] and step["ok"] and step["relative"] <= TOLERANCE
    cast = record["verify_output"]
    assert cast["op"] == "cast to bfloat16" and not cast["preserving"] and cast["relative"] > TOLERANCE
