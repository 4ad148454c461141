"""A small growth study end to end through the CLI (a trained tiny seed, four arms, lm-eval on the offline suite): killed
while an arm trains and run again, it redoes no finished arm and resumes the one it stopped; every arm read the same
batches and held-out sequences bit for bit; the function-preserving arm starts at the trained seed's held-out loss and
scratch near ln(vocab); the console stays short and ends with the page, which opens offline in a browser; and an arm
trained through torchrun is the same model as the one trained in process."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from browser import visit

from suite.study.config import load_study

pytestmark = pytest.mark.slow
STEPS = 32


def small_study(tmp_path: Path, prepared: Path | None = None, **train: object) -> Path:
    """The shipped tiny study cut down: a smaller seed trained 8 steps, 4 arms of 32 steps of 4 x 64 tokens, 10
    documents per benchmark, a checkpoint at steps 16 and 32."""
    data = yaml.safe_load(load_study("tiny").source.read_text())
    if prepared is not None:
        data["data"] = {"prepared": str(prepared)}
    data["name"] = "ci"
    data["seed"]["fixture"].update(hidden=64, ffn=128, heads=2, kv_heads=1, vocab=512)
    shape = {"threads": 1, "seq_len": 64, "global_batch": 4, "micro_batch": 4, "activation_checkpointing": "none"}
    data["seed"]["train"]["overrides"] = {**shape, "max_steps": 8, "checkpoint": {"every": 8, "keep_states": 1},
                                          "data": {"seed": 1}}
    data["train"] = {"config": "tiny", "tokens": STEPS * 256, **train,
                     "overrides": {**shape, "checkpoint": {"every": 16, "keep_states": 1},
                                   "data": {"seed": 0, "validation": {"every": 4, "sequences": 2}}}}
    keep = {"card", "identity-depth", "scratch", "seed-continued"}
    data["arms"] = [a for a in data["arms"] if a["name"] in keep]
    data["eval"].update(offline_limit=10, batch_size=16)
    path = tmp_path / ("ci.yaml" if not train else "ci-torchrun.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def study_cmd(config: Path, workdir: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from suite.cli import main; main()", "study", "--config", str(config),
            "--workdir", str(workdir), "--db", str(db), *extra]


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GROWBENCH_DATA_DIR", "GROWBENCH_DB")}
    return {**env, "HOME": str(tmp_path / "home")}  # no benchmark mirror: the offline suite


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The small study, killed while its second arm trains (after its first saved state), then run to the end."""
    tmp = tmp_path_factory.mktemp("study")
    config, workdir, db, env = small_study(tmp), tmp / "work", tmp / "study.duckdb", environment(tmp)
    proc = subprocess.Popen(study_cmd(config, workdir, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    state = workdir / "arms" / "identity-depth" / "train" / "state"
    deadline = time.monotonic() + 900
    while not (state.is_dir() and any(state.glob("step-*"))):
        assert proc.poll() is None and time.monotonic() < deadline, "the study ended before the second arm's state"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    steps = workdir / ".steps"
    before = {p.name: p.stat().st_mtime_ns for p in steps.glob("*.json")}
    again = subprocess.run(study_cmd(config, workdir, db), capture_output=True, text=True, timeout=1800, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    return {"config": config, "workdir": workdir, "db": db, "before": before, "proc": again, "tmp": tmp, "env": env}


def test_a_killed_study_resumes_without_redoing_finished_arms(study: dict) -> None:
    out, steps = study["proc"].stdout, study["workdir"] / ".steps"
    assert {"seed.json", "data.json", "card.start.json", "card.train.json", "identity-depth.start.json"} <= \
        set(study["before"]) and "identity-depth.train.json" not in study["before"]
    for name, mtime in study["before"].items():  # finished phases are not redone
        assert (steps / name).stat().st_mtime_ns == mtime, name
    for phase in ("seed", "data", "card.start", "card.train", "identity-depth.start"):
        assert f"[{phase}] done already, skipped" in out
    assert "[identity-depth.train] running\nresuming training from its last complete checkpoint" in out
    rows = [json.loads(line) for line in
            (study["workdir"] / "arms" / "identity-depth" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))  # one uninterrupted log
    for arm in ("scratch", "seed-continued"):
        assert f"[{arm}.train] finished" in out


def test_every_arm_read_the_same_data_bit_for_bit(study: dict) -> None:
    """Each arm's loader gives the same batches at every step and the same held-out sequences, and each arm's saved
    training state records the same data fingerprint."""
    from transformers import AutoTokenizer

    from suite.study.plan import plan_study
    from training.loader import build_loader
    from training.mixture import resolve_stages
    from training.trainer import stage_steps

    plan = plan_study(load_study(study["config"]), study["workdir"])
    batches, held_out, fingerprints = [], [], set()
    for arm in plan.arms:
        tc = arm.train.config
        stages = resolve_stages(tc.data.mixtures, tc.data.sources, inputs=False)
        tokenizer = AutoTokenizer.from_pretrained(str(arm.final.path))
        loader = build_loader(stages, tc, tokenizer, stage_steps(stages, tc.tokens_per_step), arm.train.run_dir, 0,
                              1, None)
        batches.append(torch.stack([loader.batch(step) for step in range(STEPS)]))
        held_out.append(loader.validation())
        [state] = (arm.train.run_dir / "state").glob("step-*")
        fingerprints.add(json.loads((state / "trainer.json").read_text())["data"]["fingerprint"])
    assert len(fingerprints) == 1 and batches[0].shape == (STEPS, 4, 64)
    for other, sequences in zip(batches[1:], held_out[1:]):
        assert torch.equal(other, batches[0])
        assert sequences.keys() == held_out[0].keys() and len(sequences) == 4
        assert all(torch.equal(sequences[k], held_out[0][k]) for k in sequences)


def test_the_study_reports_where_arms_start_tokens_to_target_and_verdicts(study: dict) -> None:
    from suite.store import Store

    out, workdir = study["proc"].stdout, study["workdir"]
    assert len(out) + len(study["proc"].stderr) < 4096, out
    assert out.rstrip().splitlines()[-1] == f"study page: {workdir / 'report' / 'study.html'}"
    starts = {arm: json.loads((workdir / ".steps" / f"{arm}.start.json").read_text())["outputs"]["held_out"]
              for arm in ("card", "identity-depth", "scratch", "seed-continued")}
    mean = {arm: sum(v.values()) / len(v) for arm, v in starts.items()}
    assert mean["identity-depth"] == pytest.approx(mean["seed-continued"], abs=1e-5)  # function preserved
    assert mean["card"] != pytest.approx(mean["seed-continued"], abs=1e-3)  # copy-depth changes the function
    assert abs(mean["scratch"] - math.log(512)) < 0.1  # random init: about a uniform guess
    assert "identity-depth (function-preserving) starts at held-out loss" in out
    assert "scratch starts at held-out loss" in out and "ln(vocab 512) = 6.2383" in out
    table = out[out.index("target: scratch's final held-out loss"):]
    assert "tokens to target" in table and "\ncard " in table and "\nscratch " in table
    assert "paired over the same documents, Holm over 15 tests at alpha 0.05 (3 pairs)" in out
    assert "ci-card@32 vs ci-scratch@32: average" in out
    runs = Store(study["db"]).query("SELECT m.name, r.benchmark, r.status, r.limit_n FROM eval_runs r JOIN models m "
                                    "USING (model_id)")
    assert set(runs["status"]) == {"finished"} and set(runs["limit_n"]) == {10}
    assert len(runs) == 4 * 2 * 4  # 4 arms x 2 checkpoints x 4 benchmarks, none redone after the kill
    assert {n.split("@")[0] for n in runs["name"]} == {"ci-card", "ci-identity-depth", "ci-scratch",
                                                        "ci-seed-continued"}
    page = visit(workdir / "report" / "study.html")
    assert page.requests == [(workdir / "report" / "study.html").as_uri()] and not page.console_errors
    assert "Tokens to target" in page.text and "Paired comparisons" in page.text and "Holm over 15 tests" in page.text
    assert len(page.plot_std) == 1 + 4 and min(page.plot_std) > 0.01  # the curves and one panel per source
    assert page.tables["start"][1][:3] == ["card", "grown", "no"]


def test_the_dry_run_prints_what_ran(study: dict) -> None:
    from suite.study.plan import describe, plan_study

    dry = subprocess.run(study_cmd(study["config"], study["workdir"], study["db"], "--dry-run"), capture_output=True,
                         text=True, timeout=300, env=study["env"])
    assert dry.returncode == 0, dry.stderr
    plan = plan_study(load_study(study["config"]), study["workdir"])
    assert dry.stdout.splitlines() == describe(plan)
    for arm in plan.arms:
        assert [p.name for p in sorted((arm.train.run_dir / "checkpoints").iterdir())] == \
            [m.path.name for m in arm.train.checkpoints]


def test_an_arm_trained_through_torchrun_is_the_same_model(study: dict) -> None:
    """A shard whose arms train through torchrun (one process here), in a work dir holding the study's seed and
    reading its data: its card arm's checkpoint equals the one trained in the study's own process."""
    from safetensors.torch import load_file

    from suite.store import Store

    tmp = study["tmp"]
    config = small_study(tmp, study["workdir"] / "data", torchrun=["--nproc-per-node", "1"])
    work = tmp / "torchrun"
    for part in ("seed", "seed-train"):
        shutil.copytree(study["workdir"] / part, work / part)
    (work / ".steps").mkdir()
    for phase in ("seed", "data"):
        shutil.copy(study["workdir"] / ".steps" / f"{phase}.json", work / ".steps")
    proc = subprocess.run(study_cmd(config, work, tmp / "shard-0.duckdb", "--shard", "0/4"), capture_output=True,
                          text=True, timeout=1200, env=study["env"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[seed] done already, skipped" in proc.stdout and "torchrun --nproc-per-node 1" in proc.stdout
    assert "shard 0/4 done: arms card" in proc.stdout and "study page" not in proc.stdout
    shard = Store(tmp / "shard-0.duckdb").query("SELECT m.name, r.status FROM eval_runs r JOIN models m USING "
                                               "(model_id)")
    assert sorted(set(shard["name"])) == ["ci-card@16", "ci-card@32"] and list(shard["status"]) == ["finished"] * 8
    final = f"checkpoints/step-{STEPS:06d}/model.safetensors"
    ours = load_file(work / "arms" / "card" / "train" / final)
    theirs = load_file(study["workdir"] / "arms" / "card" / "train" / final)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
