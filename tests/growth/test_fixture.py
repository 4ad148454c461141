"""The tiny-model factory: deterministic, complete, and loadable offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny
from growth.foundation.errors import GrowbenchError


def test_same_arguments_give_byte_identical_weights(tmp_path: Path, tiny_model: Path) -> None:
    again = make_tiny(tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    other = make_tiny(tmp_path / "other", TinySpec(seed=1))
    assert (other / "model.safetensors").read_bytes() != (tiny_model / "model.safetensors").read_bytes()


def test_checkpoint_is_complete(tiny_model: Path) -> None:
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json"):
        assert (tiny_model / name).exists(), name
    ckpt = Checkpoint.open(tiny_model)
    assert ckpt.config["head_dim"] >= 32
    assert "lm_head.weight" not in ckpt.names()  # tied, as transformers saves it


def test_loads_offline_in_transformers_and_generates(tiny_model: Path) -> None:
    """In a fresh process with the hub switched off, as a user would load it."""
    code = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(tiny_model)!r})\n"
        f"t = AutoTokenizer.from_pretrained({str(tiny_model)!r})\n"
        "assert type(m).__name__ == 'Qwen3ForCausalLM'\n"
        "ids = t('Question: Ava has 3 apples', return_tensors='pt')\n"
        "out = m.generate(**ids, max_new_tokens=5, do_sample=False)\n"
        "assert out.shape[1] == ids['input_ids'].shape[1] + 5\n"
        "assert t.eos_token == '<|endoftext|>' and t.pad_token is not None\n"
        "assert t.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False).startswith('<|im_start|>')\n"
        "print('ok')\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_sharded_fixture_has_index_and_same_tensors(tiny_model: Path, tiny_sharded: Path) -> None:
    assert (tiny_sharded / "model.safetensors.index.json").exists()
    a, b = Checkpoint.open(tiny_model), Checkpoint.open(tiny_sharded)
    assert sorted(a.names()) == sorted(b.names())
    assert len({b.info(n).file for n in b.names()}) > 1
    for name in a.names():
        assert a.read(name).equal(b.read(name))


@pytest.mark.parametrize("kwargs, match", [
    ({"heads": 3, "kv_heads": 2}, "multiple of --kv-heads"),
    ({"vocab": 100}, "--vocab"),
    ({"dtype": "float64x"}, "unsupported dtype"),
])
def test_bad_geometry_is_a_clear_error(kwargs: dict, match: str) -> None:
    with pytest.raises(GrowbenchError, match=match):
        TinySpec(**kwargs)


def test_random_init_of_a_grown_architecture(tmp_path: Path, tiny_model: Path) -> None:
    """A growth study's scratch control: the grown config from seeded random weights, with the seed's tokenizer, and
    a guess as good as uniform before training (loss about ln(vocab))."""
    import math

    import torch
    from transformers import AutoModelForCausalLM

    from growth.fixture import random_init
    from growth.grow import plan_growth

    grown = plan_growth(Checkpoint.open(tiny_model).config, "tiny").final.config
    out = random_init(tmp_path / "scratch", grown, tiny_model, seed=3)
    again = random_init(tmp_path / "again", grown, tiny_model, seed=3)
    assert (out / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    ckpt = Checkpoint.open(out)
    assert ckpt.config == grown and "lm_head.weight" in ckpt.names()  # untied, as the plan grew it
    assert ckpt.num_parameters() == plan_growth(Checkpoint.open(tiny_model).config, "tiny").final.num_parameters
    assert (out / "tokenizer.json").read_bytes() == (tiny_model / "tokenizer.json").read_bytes()
    assert not (out / "fixture.json").exists()  # the seed's factory spec does not describe this model
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.randint(0, 1024, (2, 64), generator=torch.Generator().manual_seed(0))
    assert abs(model(input_ids=ids, labels=ids).loss.item() - math.log(1024)) < 0.05
    with pytest.raises(GrowbenchError, match="random init builds qwen3 models"):
        random_init(tmp_path / "llama", {**grown, "model_type": "llama"}, tiny_model)
