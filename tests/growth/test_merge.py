"""The streaming linear merge against an independent numpy computation; its options, merge.json, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny
from growth.foundation.errors import CheckpointError, ConfigError
from growth.merge import execute
from growth.merge.execute import plan_merge, run_merge
from growth.merge.mergekit import mergekit_yaml
from growth.merge.recipe import inline_recipe, load_recipe, recipe_from_dict


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> list[Path]:
    d = tmp_path_factory.mktemp("merge-inputs")
    return [tiny_model, make_tiny(d / "s1", TinySpec(seed=1)), make_tiny(d / "s2", TinySpec(seed=2))]


def numpy_linear(paths: list[Path], weights: list[float]) -> dict[str, np.ndarray]:
    """The reference: whole state dicts in float64 numpy, weighted sum."""
    states = [load_file(str(p / "model.safetensors")) for p in paths]
    return {k: sum(w * s[k].astype(np.float64) for w, s in zip(weights, states)) for k in states[0]}


def max_abs(ckpt: Checkpoint, ref: dict[str, np.ndarray]) -> float:
    assert sorted(ckpt.names()) == sorted(ref)
    return max(float(np.abs(ckpt.read(k).double().numpy() - v).max()) for k, v in ref.items())


def test_linear_equals_numpy_and_records_merge_json(trio: list[Path], tmp_path: Path) -> None:
    weights = [0.2, 0.5, 0.3]
    recipe = inline_recipe([f"{p}:{w}" for p, w in zip(trio, weights)], {"normalize": False})
    out = run_merge(plan_merge(recipe), tmp_path / "m")
    merged = Checkpoint.open(out)
    assert max_abs(merged, numpy_linear(trio, weights)) <= 1e-6
    assert all(merged.info(n).dtype == torch.float32 for n in merged.names())
    record = json.loads((out / "merge.json").read_text())
    assert record["method"] == "linear" and record["normalize"] is False and record["dtype"] == "float32"
    assert [m["fingerprint"] for m in record["models"]] == [Checkpoint.open(p).fingerprint() for p in trio]
    assert [m["weight"] for m in record["models"]] == weights
    assert record["recipe"]["models"][1]["path"] == str(trio[1])
    assert (out / "tokenizer.json").exists() and (out / "config.json").exists()


def test_normalize_divides_by_the_weight_sum(trio: list[Path], tmp_path: Path) -> None:
    recipe = inline_recipe([f"{trio[0]}:1", f"{trio[1]}:3"], {"normalize": True})
    out = run_merge(plan_merge(recipe), tmp_path / "m")
    assert max_abs(Checkpoint.open(out), numpy_linear(trio[:2], [0.25, 0.75])) <= 1e-6
    assert [m["weight"] for m in json.loads((out / "merge.json").read_text())["models"]] == [0.25, 0.75]


def test_merging_a_model_with_itself_returns_it(tiny_model: Path, tmp_path: Path) -> None:
    out = run_merge(plan_merge(inline_recipe([f"{tiny_model}:0.5", f"{tiny_model}:0.5"], {})), tmp_path / "m")
    a, b = Checkpoint.open(tiny_model), Checkpoint.open(out)
    assert all(torch.equal(a.read(n), b.read(n)) for n in a.names())


def test_chunked_sharded_bf16_inputs_keep_their_dtype_unless_overridden(tmp_path: Path, tiny_sharded: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute, "CHUNK_ELEMENTS", 1000)  # many chunks per tensor, uneven tail
    other = make_tiny(tmp_path / "other", TinySpec(seed=3, shard_size=400_000))
    bf = [make_tiny(tmp_path / f"bf{i}", TinySpec(seed=i, dtype="bfloat16", layers=2)) for i in (4, 5)]
    out = run_merge(plan_merge(inline_recipe([f"{tiny_sharded}:0.4", f"{other}:0.6"], {})), tmp_path / "m",
                    max_shard_bytes=300_000)
    merged = Checkpoint.open(out)
    assert (out / "model.safetensors.index.json").exists()
    a, b = Checkpoint.open(tiny_sharded), Checkpoint.open(other)
    assert max((merged.read(n) - (0.4 * a.read(n).double() + 0.6 * b.read(n).double())).abs().max().item()
               for n in a.names()) <= 1e-6
    kept = Checkpoint.open(run_merge(plan_merge(inline_recipe([f"{p}:0.5" for p in bf], {})), tmp_path / "bf"))
    assert {kept.info(n).dtype for n in kept.names()} == {torch.bfloat16}
    cast = run_merge(plan_merge(inline_recipe([f"{p}:0.5" for p in bf], {}, dtype="float32")), tmp_path / "f32")
    assert {Checkpoint.open(cast).info(n).dtype for n in kept.names()} == {torch.float32}
    config = json.loads((cast / "config.json").read_text())
    assert "bfloat16" not in {config.get("dtype"), config.get("torch_dtype")}
    x, y, c = Checkpoint.open(bf[0]), Checkpoint.open(bf[1]), Checkpoint.open(cast)
    assert max((c.read(n).double() - 0.5 * x.read(n).double() - 0.5 * y.read(n).double()).abs().max().item()
               for n in x.names()) <= 1e-6


def test_workers_split_the_output_not_the_bytes_and_report_their_time(trio: list[Path], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from growth.iostats import IOStats

    monkeypatch.setattr(execute, "CHUNK_ELEMENTS", 3000)
    monkeypatch.setattr(execute, "BLOCK_ELEMENTS", 700)
    recipe = inline_recipe([f"{p}:{w}" for p, w in zip(trio, (0.2, 0.5, 0.3))], {"normalize": False})
    one = run_merge(plan_merge(recipe), tmp_path / "one", workers=1)
    stats = IOStats()
    many = run_merge(plan_merge(recipe), tmp_path / "many", workers=4, stats=stats)
    assert (one / "model.safetensors").read_bytes() == (many / "model.safetensors").read_bytes()
    summary = stats.summary()
    assert all(summary["busy"][kind] > 0 for kind in ("read", "compute", "write", "fsync"))
    first = Checkpoint.open(trio[0])
    blocks = sum(-(-min(3000, n - a) // 700) for n in (first.info(x).numel for x in first.names())
                 for a in range(0, n, 3000))
    assert len([s for s in stats.spans if s[0] == "read"]) == 3 * blocks  # each input read once, block by block
    assert execute.default_workers() >= 1


def test_recipe_file_round_trip_and_mergekit_export(trio: list[Path], tmp_path: Path) -> None:
    text = yaml.safe_dump({"method": "linear", "normalize": False, "dtype": "bfloat16",
                           "models": [{"path": str(trio[0]), "weight": 0.3, "role": "code anchor",
                                       "evidence": {"mbpp": 0.79}},
                                      {"path": str(trio[1]), "weight": 0.7}]})
    (tmp_path / "r.yaml").write_text(text)
    recipe = load_recipe(tmp_path / "r.yaml")
    assert recipe.resolved["weights"] == [0.3, 0.7] and recipe.models[0].role == "code anchor"
    assert recipe_from_dict(recipe.to_dict()).to_dict() == recipe.to_dict()
    exported = yaml.safe_load(mergekit_yaml(recipe))
    assert exported == {"merge_method": "linear", "dtype": "float32", "out_dtype": "bfloat16",
                        "parameters": {"normalize": False},
                        "models": [{"model": str(trio[0]), "parameters": {"weight": 0.3}},
                                   {"model": str(trio[1]), "parameters": {"weight": 0.7}}]}


@pytest.mark.parametrize("specs, params, match", [
    (["a:nan", "b:1"], {}, "not a finite number"),
    (["a:-0.5", "b:1.5"], {"normalize": False}, "negative; pass --allow-negative"),
    (["a:0.3", "b:0.3"], {"normalize": False}, "sum to 0.6, not 1"),
    (["a:1", "b:-1"], {"allow_negative": True}, "cannot normalise"),
    (["a:0.5", "b:0.5"], {"renormalize": True}, "unknown parameter 'renormalize'"),
    (["a0.5"], {}, "expected PATH:WEIGHT"),
])
def test_invalid_weights_and_parameters(specs: list[str], params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        inline_recipe(specs, params)


def test_negative_weights_allowed_when_asked(trio: list[Path], tmp_path: Path) -> None:
    recipe = inline_recipe([f"{trio[0]}:1.5", f"{trio[1]}:-0.5"], {"allow_negative": True, "normalize": False})
    out = run_merge(plan_merge(recipe), tmp_path / "m")
    assert max_abs(Checkpoint.open(out), numpy_linear(trio[:2], [1.5, -0.5])) <= 1e-6


def test_recipe_errors() -> None:
    with pytest.raises(ConfigError, match="no models"):
        recipe_from_dict({"models": []})
    with pytest.raises(ConfigError, match="unknown merge method 'lineer'. Did you mean linear"):
        recipe_from_dict({"method": "lineer", "models": [{"path": "a", "weight": 1}]})
    with pytest.raises(ConfigError, match="parameter 'weight' is required"):
        recipe_from_dict({"models": [{"path": "a"}]})
    with pytest.raises(ConfigError, match="unsupported dtype"):
        recipe_from_dict({"dtype": "int8", "models": [{"path": "a", "weight": 1}]})


def test_mismatched_sources_name_the_first_difference(tiny_model: Path, tmp_path: Path) -> None:
    wide = make_tiny(tmp_path / "wide", TinySpec(ffn=384))
    shallow = make_tiny(tmp_path / "shallow", TinySpec(layers=3))
    with pytest.raises(CheckpointError, match=r"'model.layers.0.mlp.gate_proj.weight' has shape \[256, 128\] in .* but \[384, 128\]"):
        plan_merge(inline_recipe([f"{tiny_model}:0.5", f"{wide}:0.5"], {}))
    with pytest.raises(CheckpointError, match=r"'model.layers.3.input_layernorm.weight' is in .* but not in"):
        plan_merge(inline_recipe([f"{tiny_model}:0.5", f"{shallow}:0.5"], {}))
    other = tmp_path / "llama"
    other.mkdir()
    config = json.loads((tiny_model / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForCausalLM"]}))
    (other / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="architectures differs"):
        plan_merge(inline_recipe([f"{tiny_model}:0.5", f"{other}:0.5"], {}))


def test_missing_or_corrupt_source(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        plan_merge(inline_recipe([f"{tiny_model}:0.5", f"{tmp_path / 'nope'}:0.5"], {}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_model / "config.json").read_text())
    data = (tiny_model / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        plan_merge(inline_recipe([f"{tiny_model}:0.5", f"{broken}:0.5"], {}))
