"""End-to-end training on the tiny model: exports load in transformers, stage switch, exact resume after kill -9,
fallback past a corrupt state, 2-process FSDP2 matching one process, and the user errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from traintest import GOLDEN, REPO, cli, losses, run_and_kill, write_config

from growth.checkpoint import Checkpoint
from growth.foundation.errors import CheckpointError, ConfigError, DataError
from training.config import load_config
from training.trainer import train

PATHS = ("model", "run_dir", "run_id")  # differ per machine; not part of what the golden run is


def golden_record(config, run_losses: list[float]) -> dict:
    from dataclasses import asdict
    from importlib.metadata import version

    from growth.fixture import TinySpec
    from growth.foundation.config import as_dict

    return {"about": "tests/training/test_train.py::test_resume_after_kill_reproduces_losses_exactly; regenerate "
                     "with GROWBENCH_WRITE_GOLDEN=1",
            "versions": {"torch": torch.__version__, "transformers": version("transformers")},
            "model": asdict(TinySpec()), "config": {k: v for k, v in as_dict(config).items() if k not in PATHS},
            "losses": run_losses}


def golden_mismatch(golden: dict, now: dict) -> str | None:
    """Why this run's losses cannot be checked against, or differ from, the golden record; None when they match."""
    for part in ("model", "config"):
        if golden.get(part) != now[part]:
            keys = sorted(k for k in set(golden.get(part) or {}) | set(now[part])
                          if (golden.get(part) or {}).get(k) != now[part].get(k))
            return (f"the golden losses were recorded with another {part} (differs in {', '.join(keys)}); "
                    "regenerate them with GROWBENCH_WRITE_GOLDEN=1 if the change is intended")
    if now["losses"] == pytest.approx(golden["losses"], rel=1e-3):
        return None
    worst = max(range(len(now["losses"])), key=lambda i: abs(now["losses"][i] / golden["losses"][i] - 1))
    where = f"step {worst + 1}: {now['losses'][worst]:.6f} vs golden {golden['losses'][worst]:.6f}"
    changed = {k: f"{golden['versions'].get(k)} -> {v}" for k, v in now["versions"].items()
               if golden["versions"].get(k) != v}
    if changed:
        return (f"losses differ from the golden run ({where}) and {', '.join(f'{k} {c}' for k, c in changed.items())} "
                "changed since it was recorded: check the new numerics, then regenerate with GROWBENCH_WRITE_GOLDEN=1")
    return f"losses differ from the golden run ({where}) with the same torch and transformers: a numerics regression"



def test_exports_load_in_transformers_and_stages_switch(tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM

    mix = tmp_path / "two.yaml"
    mix.write_text("name: two\nstages:\n"
                   "  - {name: first, tokens: 256, sources: [{name: prose, weight: 1, generator: prose}]}\n"
                   "  - {name: second, tokens: 512, sources: [{name: math, weight: 1, generator: math}]}\n")
    cfg = load_config(write_config(tmp_path, tiny_model, max_steps=None, data={"mixtures": [str(mix)]}))
    exports = train(cfg)
    run = tmp_path / "run"
    assert [p.name for p in exports] == ["step-000003", "step-000006"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["first"] * 2 + ["second"] * 4  # 256 tokens = 2 steps of 128
    record = json.loads((exports[-1] / "training.json").read_text())
    parent = Checkpoint.open(tiny_model)
    assert {k: record[k] for k in ("run_id", "step", "tokens", "stage", "parent_fingerprint", "parent_path")} == {
        "run_id": "run", "step": 6, "tokens": 768, "stage": "second", "parent_fingerprint": parent.fingerprint(),
        "parent_path": str(parent.path)}
    assert record["config"]["seq_len"] == 32
    assert record["tokens_by_source"] == [{"prose": 256}, {"math": 512}]
    out = Checkpoint.open(exports[-1])
    assert sorted(out.names()) == sorted(parent.names()) and (exports[-1] / "tokenizer.json").exists()
    model = AutoModelForCausalLM.from_pretrained(str(exports[-1]))
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.isfinite(model(ids).logits).all()
    assert not torch.equal(out.read("model.layers.0.mlp.up_proj.weight"),
                           parent.read("model.layers.0.mlp.up_proj.weight"))
    assert losses(run)[-1] < losses(run)[0]


def test_resume_after_kill_reproduces_losses_exactly(tmp_path, tiny_model):
    steps = 16
    reference = load_config(write_config(tmp_path, tiny_model, "ref", max_steps=steps, checkpoint={"every": 4}))
    train(reference)
    now = golden_record(reference, losses(tmp_path / "ref"))
    if os.environ.get("GROWBENCH_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(now, indent=1) + "\n")
    problem = golden_mismatch(json.loads(GOLDEN.read_text()), now)
    assert problem is None, problem
    config = write_config(tmp_path, tiny_model, "killed", max_steps=steps, checkpoint={"every": 4})
    run = tmp_path / "killed"
    run_and_kill(config, run, 7)
    assert len(losses(run)) < steps
    assert sorted(p.name for p in (run / "state").glob("step-*"))[-1] >= "step-000004"
    with pytest.raises(ConfigError, match="pass --resume"):
        train(load_config(config))
    train(load_config(config), resume=True)
    assert losses(run) == losses(tmp_path / "ref")
    assert Checkpoint.open(run / "checkpoints" / "step-000016").fingerprint() == \
        Checkpoint.open(tmp_path / "ref" / "checkpoints" / "step-000016").fingerprint()


def test_golden_mismatches_are_explained() -> None:
    golden = json.loads(GOLDEN.read_text())
    assert set(golden["versions"]) == {"torch", "transformers"} and golden["config"]["max_steps"] == 16
    assert golden_mismatch(golden, golden) is None
    off = {**golden, "losses": [x * 1.01 for x in golden["losses"]]}
    assert "with the same torch and transformers: a numerics regression" in golden_mismatch(golden, off)
    upgraded = {**off, "versions": {**golden["versions"], "transformers": "9.9.9"}}
    assert f"transformers {golden['versions']['transformers']} -> 9.9.9 changed" in golden_mismatch(golden, upgraded)
    other = {**golden, "config": {**golden["config"], "seq_len": 64}}
    assert "another config (differs in seq_len)" in golden_mismatch(golden, other)


def test_corrupt_state_falls_back_then_refuses(tmp_path, tiny_model, caplog):
    config = load_config(write_config(tmp_path, tiny_model, max_steps=4, checkpoint={"every": 2, "keep_states": 3}))
    train(config)
    run = tmp_path / "run"
    newest = run / "state" / "step-000004"
    shard = next(p for p in newest.iterdir() if p.suffix == ".distcp")
    shard.write_bytes(shard.read_bytes()[:100])
    config.max_steps = 5
    train(config, resume=True)
    assert "skipping corrupt training state" in caplog.text
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5]
    for state in (run / "state").glob("step-*"):
        (state / "trainer.json").write_text("{")
    with pytest.raises(CheckpointError, match="no training state under state/ is complete"):
        train(config, resume=True)


def test_user_errors_exit_2_with_one_line(tmp_path, tiny_model):
    config = write_config(tmp_path, tiny_model, seq_len=100_000)
    proc = subprocess.run(cli("train", "--config", str(config)), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: seq_len 100000 exceeds the model's context (8192 positions, max_position_embeddings in "
        f"{tiny_model}/config.json); lower seq_len"]
    with pytest.raises(DataError, match="source nope: no file matches"):
        mix = tmp_path / "m.yaml"
        mix.write_text("name: m\nstages: [{name: s, tokens: 9, sources: [{name: nope, weight: 1, files: [x/*.txt]}]}]\n")
        train(load_config(write_config(tmp_path, tiny_model, data={"mixtures": [str(mix)]})))
    with pytest.raises(CheckpointError, match="does not exist"):
        train(load_config(write_config(tmp_path, tmp_path / "no-model")))


def test_fsdp2_two_processes_match_one(tmp_path, tiny_model):
    steps = 20
    single = load_config(write_config(tmp_path, tiny_model, "single", max_steps=steps, checkpoint={"every": 20}))
    train(single)
    config = write_config(tmp_path, tiny_model, "fsdp", max_steps=steps, checkpoint={"every": 20})
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "suite.cli", "train", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, ref = losses(tmp_path / "fsdp"), losses(tmp_path / "single")
    assert len(ours) == steps
    print(f"FSDP2 vs single process: max relative loss difference {max(abs(a - b) / b for a, b in zip(ours, ref)):.2e}")
    for a, b in zip(ours, ref):
        assert abs(a - b) <= 1e-4 * abs(b)
    sharded = Checkpoint.open(tmp_path / "fsdp" / "checkpoints" / "step-000020")
    plain = Checkpoint.open(tmp_path / "single" / "checkpoints" / "step-000020")
    for name in plain.names():
        torch.testing.assert_close(sharded.read(name), plain.read(name), rtol=1e-3, atol=1e-4)


def test_fsdp2_resume_is_exact(tmp_path, tiny_model):
    """Sharded DCP state (FSDP2 shards, distributed-Muon momentum), written asynchronously (checkpoint.async_save),
    resumes to the same losses and export: a 2-process run loses its last state and export, resumes from step 4
    and redoes steps 5-8 exactly."""
    def torchrun(*extra: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               "-m", "suite.cli", "train", "--config", str(config), *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    config = write_config(tmp_path, tiny_model, max_steps=8, checkpoint={"every": 4, "async_save": True})
    run = tmp_path / "run"
    torchrun()
    assert sorted(p.name for p in (run / "state").iterdir()) == ["step-000004", "step-000008"]  # all published
    first, export = losses(run), run / "checkpoints" / "step-000008"
    fingerprint = Checkpoint.open(export).fingerprint()
    shutil.rmtree(run / "state" / "step-000008")
    shutil.rmtree(export)
    torchrun("--resume")
    assert losses(run) == first
    assert Checkpoint.open(export).fingerprint() == fingerprint
