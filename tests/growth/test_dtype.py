"""One dtype rule: reading follows transformers (dtype, then torch_dtype); every writer keeps the parent's key(s).

The regression case: a bf16 parent whose config says only `torch_dtype` (as Qwen3-4B-Base's does), trained and
exported as float32, used to get `dtype: float32` added beside `torch_dtype: bfloat16`, and the evaluator read
torch_dtype first: the float32 export was evaluated, and recorded, as bf16.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from growth.checkpoint import Checkpoint
from growth.dtype import config_dtype, with_dtype
from growth.fixture import TinySpec, make_tiny


def bf16_parent(root: Path, keys: tuple[str, ...] = ("torch_dtype",)) -> Path:
    """A tiny bf16 checkpoint whose config declares its dtype under `keys` only."""
    path = make_tiny(root / "bf16-parent", TinySpec(dtype="bfloat16", layers=2))
    config = json.loads((path / "config.json").read_text())
    config.pop("dtype", None)
    config.update({k: "bfloat16" for k in keys})
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_reading_follows_transformers_and_writing_keeps_the_keys(caplog: pytest.LogCaptureFixture) -> None:
    from transformers import PretrainedConfig

    assert config_dtype({"torch_dtype": "bfloat16"}) == "bfloat16"
    assert config_dtype({"dtype": "float16", "torch_dtype": "float16"}) == "float16"
    assert config_dtype({}) == "float32" and config_dtype({}, default="bfloat16") == "bfloat16"
    # disagreeing keys: transformers loads `dtype`, and so do we (with a warning)
    both = {"dtype": "float32", "torch_dtype": "bfloat16"}
    assert config_dtype(both) == "float32"
    assert str(PretrainedConfig(**both).dtype).removeprefix("torch.") == "float32"
    assert "transformers loads it as float32" in caplog.text
    assert with_dtype({"torch_dtype": "bfloat16"}, torch.float32) == {"torch_dtype": "float32"}
    assert with_dtype({"dtype": "bfloat16", "torch_dtype": "bfloat16"}, "fp32") == {"dtype": "float32",
                                                                                     "torch_dtype": "float32"}
    assert with_dtype({"model_type": "qwen3"}, torch.bfloat16) == {"model_type": "qwen3", "dtype": "bfloat16"}


def test_bf16_parent_exported_as_float32_is_evaluated_as_float32(tmp_path: Path, store) -> None:
    from transformers import AutoModelForCausalLM

    from suite.eval.evaluate import evaluate, resolve_dtype
    from training.checkpointing import export_hf

    parent = Checkpoint.open(bf16_parent(tmp_path))
    model = AutoModelForCausalLM.from_pretrained(str(parent.path), dtype=torch.float32)
    out = export_hf(tmp_path / "run", 1, model, parent, {"run_id": "run", "step": 1}, dtype="float32")
    config = json.loads((out / "config.json").read_text())
    assert config["torch_dtype"] == "float32" and "dtype" not in config  # the parent's key, now agreeing
    exported = Checkpoint.open(out)
    assert {exported.info(n).dtype for n in exported.names()} == {torch.float32}
    assert resolve_dtype("auto", exported) == "float32" and resolve_dtype("auto", parent) == "bfloat16"
    # through the real evaluator: the run row records what ran
    [result] = evaluate(out, suite="tiny-builtin", benchmarks=["tiny_cloze"], limit=2, backend="hf", store=store,
                        batch_size=2)
    assert result.status == "finished"
    assert store.query("SELECT dtype FROM eval_runs")["dtype"].tolist() == ["float32"]
    # a parent with both keys keeps both, agreeing
    both = Checkpoint.open(bf16_parent(tmp_path / "both", ("dtype", "torch_dtype")))
    out2 = export_hf(tmp_path / "run2", 1, model, both, {"run_id": "run2", "step": 1}, dtype="float32")
    config2 = json.loads((out2 / "config.json").read_text())
    assert (config2["dtype"], config2["torch_dtype"]) == ("float32", "float32")


def test_grow_and_merge_write_the_parent_keys(tmp_path: Path) -> None:
    from growth.grow import grow
    from growth.merge.execute import plan_merge, run_merge
    from growth.merge.recipe import inline_recipe

    parent = bf16_parent(tmp_path)
    plan = tmp_path / "untie.yaml"
    plan.write_text("name: untie\nsteps:\n  - op: untie\n")
    grown = grow(parent, tmp_path / "grown", plan, dtype="float32").path
    config = json.loads((grown / "config.json").read_text())
    assert config["torch_dtype"] == "float32" and "dtype" not in config
    kept = json.loads((grow(parent, tmp_path / "kept", plan).path / "config.json").read_text())
    assert kept["torch_dtype"] == "bfloat16" and "dtype" not in kept
    merged = run_merge(plan_merge(inline_recipe([f"{parent}:1"], {}, dtype="float32")), tmp_path / "merged")
    config = json.loads((merged / "config.json").read_text())
    assert config["torch_dtype"] == "float32" and "dtype" not in config
    assert config_dtype(config) == "float32"
