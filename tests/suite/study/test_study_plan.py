"""A study's plan, built without weights: the shipped studies' arms, their shared data and budget, plan overrides and
`vary`, the dry run at the card's 0.5-1B scale, and bad input refused in one line before anything runs."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from growth.foundation.errors import ConfigError
from suite.study.config import load_study
from suite.study.plan import apply_overrides, describe, plan_study, torchrun_gpus


def test_the_tiny_study_plan(tmp_path: Path) -> None:
    plan = plan_study(load_study("tiny"), tmp_path / "w")
    assert [a.name for a in plan.arms] == ["card", "identity-depth", "snr-none", "depth-front", "adamw", "scratch",
                                           "seed-continued"]
    assert [a.spec.start for a in plan.arms] == ["grown"] * 5 + ["scratch", "seed"]
    assert [a.preserving for a in plan.arms] == [False, True, False, False, False, False, True]
    assert plan.steps == 64 and plan.tokens == 65_536 and plan.pretrain.total == 64
    assert plan.trained_seed.path == tmp_path / "w" / "seed-train" / "checkpoints" / "step-000064"
    arms = {a.name: a for a in plan.arms}
    assert arms["card"].parameters == arms["scratch"].parameters == 1_738_752
    assert arms["seed-continued"].parameters == 722_304 and arms["seed-continued"].start == plan.trained_seed
    assert arms["snr-none"].grow.plan.steps[1].params.snr_db is None
    assert arms["identity-depth"].grow.plan.steps[2].params.init == "identity"
    assert arms["depth-front"].grow.plan.steps[2].params.start == 0
    assert not arms["adamw"].train.config.optimizer.muon and arms["card"].train.config.optimizer.muon
    # the same data stream, held-out set and budget for every arm: only the model and its optimisation differ
    data = {json.dumps([asdict(a.train.config.data), a.train.config.seq_len, a.train.config.global_batch,
                        a.train.total]) for a in plan.arms}
    assert len(data) == 1
    assert {a.train.config.data.prepared for a in plan.arms} == {str(tmp_path / "w" / "data")}
    assert {a.train.config.data.validation.every for a in plan.arms} == {8}
    assert len({a.hash for a in plan.arms}) == 7
    # FLOPs of the arm's own model: the seed-continued arm is smaller
    assert arms["card"].flops == pytest.approx(arms["card"].flops_per_token * 65_536)
    assert arms["seed-continued"].flops < arms["card"].flops
    assert plan.pairs == [(a, "scratch") for a in arms if a != "scratch"]
    lines = describe(plan)
    assert lines[2] == "  trained first (tiny): 64 steps x 1,024 tokens = 65,536 tokens (data seed 1) -> tiny-seed@64"
    assert "4 benchmarks x 7 models (every arm's checkpoints) = 28 eval jobs" in lines[-2]
    assert lines[-1].startswith("compare: 6 pairs (final checkpoints; against scratch) x 5 tests = 30 tests, holm")


def test_the_card_scale_study_plans_without_weights() -> None:
    plan = plan_study(load_study("qwen3-0.6b-card"), Path("/nowhere/study"))
    arms = {a.name: a for a in plan.arms}
    assert list(arms) == ["card", "identity-depth", "snr-20", "snr-none", "depth-front", "adamw", "scratch",
                          "seed-continued"]
    assert arms["card"].parameters == 1_393_395_456 and arms["seed-continued"].parameters == 596_049_920
    assert arms["card"].config["num_hidden_layers"] == 43 and arms["card"].config["intermediate_size"] == 6144
    assert plan.steps == 4_768 and plan.tokens == 4_768 * 4096 * 512
    assert [m.step for m in arms["card"].train.checkpoints] == [1024, 2048, 3072, 4096, 4768]
    lines = describe(plan, shards=8)
    card = next(line for line in lines if line.startswith("  card "))
    assert "1,393,395,456 params  10B tokens  1.18e+20 FLOPs  torchrun --nproc-per-node 8, shard 0/8" in card
    assert card.endswith("~82.5 H100-h = 10.3 h on 8")  # 1.18e20 FLOPs at 40% of 989 TFLOP/s, 8 GPUs
    assert "4,768 steps = 9,999,220,736 tokens" in lines[2]
    assert "shard 7/8" in next(line for line in lines if line.startswith("  seed-continued "))
    assert "14 benchmarks x 48 models (every arm's checkpoints and start) = 672 eval jobs, Ray tasks" in lines[-3]
    assert "13 pairs" in lines[-2] and "195 tests" in lines[-2]


def test_vary_and_overrides() -> None:
    from growth.plan import load_plan

    plan = load_plan("tiny")
    changed = apply_overrides(plan, {"width.snr_db": 20, "stacked.init": "identity"}, "arm x")
    assert changed.steps[1].params.snr_db == 20 and changed.steps[2].params.init == "identity"
    assert plan.steps[1].params.snr_db == 10  # the shipped plan is untouched
    with pytest.raises(ConfigError, match=r"arm x: unknown plan key 'depth.mode': depth has no parameter 'mode' "
                                          r"\(its parameters: start, end, order, init\)"):
        apply_overrides(plan, {"depth.mode": "copy"}, "arm x")
    with pytest.raises(ConfigError, match=r"plan key 'norm.eps' names no step of plan tiny \(steps: untie, width "
                                          r"\(width-expanded\), depth \(stacked\)\)"):
        apply_overrides(plan, {"norm.eps": 1}, "arm x")
    with pytest.raises(ConfigError, match="depth: init must be one of copy, identity"):
        apply_overrides(plan, {"depth.init": "zeros"}, "arm x")
    assert torchrun_gpus(["--nnodes", "2", "--nproc-per-node=8"]) == 16 and torchrun_gpus([]) == 1


def study_file(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(load_study("tiny").source.read_text())
    change(data)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def checkpoint_arm(folder: Path):
    def change(data: dict) -> None:
        data["arms"].append({"name": "other", "start": "checkpoint", "checkpoint": str(folder)})
    return change


BAD = {
    "unknown plan key": (lambda d: d["arms"][1].update(overrides={"depth.mode": "identity"}),
                         "arm 'identity-depth': unknown plan key 'depth.mode': depth has no parameter 'mode'"),
    "budget under a step": (lambda d: d["train"].update(tokens=1000),
                            "train.tokens (1,000) is smaller than one step (seq_len 128 x global_batch 8 = 1,024 "
                            "tokens)"),
    "duplicate arm": (lambda d: d["arms"].append({"name": "card", "overrides": {"width.snr_db": 20}}),
                      "two arms are named 'card'; arm names must be unique"),
    "duplicate after vary": (lambda d: d["arms"].append({"name": "snr", "vary": {"width.snr_db": [20, None]}}),
                             "two arms are named 'snr-none'"),
    "an arm that changes the data": (lambda d: d["arms"][0].update(train={"seq_len": 64}),
                                     "arm 'card': train.seq_len is shared by every arm"),
    "unknown control": (lambda d: d["compare"].update(against=["scrach"]), "'scrach' (target or compare.against) "
                        "names no arm"),
    "a budget past the mixture": (lambda d: d["train"].update(tokens=10**6), "the train config's mixture holds 96 "
                                  "steps of 1,024 tokens, fewer than train.tokens (1,000,000: 976 steps)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_nothing_runs(case: str, tmp_path: Path, cli, capsys) -> None:
    change, message = BAD[case]
    work = tmp_path / "work"
    code = cli("study", "--config", str(study_file(tmp_path, change)), "--workdir", str(work), "--db",
               str(tmp_path / "db.duckdb"))
    err = capsys.readouterr().err
    assert code == 2 and message in " ".join(err.split()), err
    assert "Traceback" not in err and not work.exists() and not (tmp_path / "db.duckdb").exists()


def test_arms_that_cannot_share_a_tokenizer_are_refused(tmp_path: Path, tiny_model: Path, cli, capsys) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "vocab_size": 2048}))
    with pytest.raises(ConfigError, match="arm 'other' cannot share the seed's tokenizer: its model has a vocabulary "
                                          "of 2048 tokens, the seed's 1024"):
        plan_study(load_study(study_file(tmp_path, checkpoint_arm(other))), tmp_path / "w")
    # the same vocabulary size, another tokenizer: found when the seed's files are here
    (other / "config.json").write_text(json.dumps(config))
    spec = json.loads((other / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    a, b = list(vocab)[300:302]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (other / "tokenizer.json").write_text(json.dumps(spec))

    def seeded(data: dict) -> None:
        checkpoint_arm(other)(data)
        data["seed"] = {"path": str(tiny_model)}
    code = cli("study", "--config", str(study_file(tmp_path, seeded)), "--workdir", str(tmp_path / "w"), "--dry-run")
    err = capsys.readouterr().err
    assert code == 2 and "arm 'other' cannot share the seed's tokenizer" in err and "another tokenizer" in err
    (other / "tokenizer.json").write_text((tiny_model / "tokenizer.json").read_text())
    plan = plan_study(load_study(study_file(tmp_path, seeded)), tmp_path / "w")
    assert plan.arm("other").start.path == other and plan.arm("other").parameters == 722_304


def test_an_arm_folder_of_other_settings_is_cleared(tmp_path: Path) -> None:
    """A changed arm starts over (its old training state is never resumed); an interrupted one keeps its state."""
    from suite.study.execute import owned

    arm = tmp_path / "arms" / "card"
    owned(arm, "hash-1")
    (arm / "train" / "state").mkdir(parents=True)
    owned(arm, "hash-1")
    assert (arm / "train" / "state").is_dir()
    owned(arm, "hash-2")
    assert not (arm / "train").exists() and (arm / ".study-hash").read_text() == "hash-2"
    (tmp_path / "arms" / "old").mkdir()  # a folder without a stamp (not the study's): cleared too
    (tmp_path / "arms" / "old" / "x").touch()
    owned(tmp_path / "arms" / "old", "hash-3")
    assert [p.name for p in (tmp_path / "arms" / "old").iterdir()] == [".study-hash"]
