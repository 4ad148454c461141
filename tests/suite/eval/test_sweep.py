"""Sweeps: step order, shards, one engine per checkpoint, kill -9 and two concurrent sweeps on one database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from suite.eval.evaluate import EvalOptions
from suite.eval.sweep import find_checkpoints, parse_shard, sweep
from suite.store import Store

GROWBENCH = str(Path(sys.executable).parent / "growbench")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training-run layout with three tiny checkpoints (different seeds, so different fingerprints)."""
    from growth.fixture import TinySpec, make_tiny

    run = tmp_path_factory.mktemp("run")
    for step in (1000, 200, 30):
        ckpt = make_tiny(run / "checkpoints" / f"step-{step:06d}", TinySpec(seed=step))
        (ckpt / "training.json").write_text(json.dumps({"run_id": "r", "step": step, "tokens": step * 10}))
    (run / "checkpoints" / ".step-002000.tmp-1-abc").mkdir()  # an unfinished publish is never picked up
    return run


def test_checkpoints_are_found_in_step_order_and_sharded(run_dir: Path) -> None:
    steps = [p.name for p in find_checkpoints([str(run_dir)])]
    assert steps == ["step-000030", "step-000200", "step-001000"]
    assert [p.name for p in find_checkpoints([str(run_dir / "checkpoints" / "step-*")])] == steps
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) == (0, 1)
    for bad in ("3/3", "a/b", "1"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    with pytest.raises(ConfigError, match="no checkpoint"):
        find_checkpoints([str(run_dir / "nothing*")])


def test_sweep_loads_one_engine_per_checkpoint_and_resumes(run_dir: Path, benchmark_mirror: Path, store: Store) -> None:
    options = EvalOptions(benchmarks=("arc_challenge", "winogrande", "gpqa_diamond"), limit=2, backend="hf",
                          data_dir=benchmark_mirror)
    report = sweep([str(run_dir)], options, store=store, shard="0/2", show_progress=False)
    assert [p.name for p in report.checkpoints] == ["step-000030", "step-001000"]
    assert report.engine_loads == 2 and report.count("finished") == 4 and report.count("unavailable") == 2
    runs = store.query("SELECT m.step, r.benchmark FROM eval_runs r JOIN models m USING (model_id) "
                       "ORDER BY r.started_at")
    assert runs.values.tolist() == [[30, "winogrande"], [30, "arc_challenge"], [1000, "winogrande"],
                                    [1000, "arc_challenge"]]  # step order, then suite order
    again = sweep([str(run_dir)], options, store=store, show_progress=False)
    assert again.engine_loads == 1 and again.count("skipped") == 4 and again.count("finished") == 2


def _finished(db: Path) -> int:
    try:
        return int(Store(db).query("SELECT count(*) AS n FROM eval_runs WHERE status = 'finished'").n.iloc[0])
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def _sweep_cmd(run_dir: Path, mirror: Path, db: Path) -> list[str]:
    return [GROWBENCH, "sweep", str(run_dir), "-b", "arc_challenge,piqa", "--limit", "2", "--backend", "hf",
            "--data-dir", str(mirror), "--db", str(db), "--no-progress"]


@pytest.mark.slow
def test_kill_9_mid_sweep_then_rerun_loses_nothing_and_duplicates_nothing(run_dir: Path, benchmark_mirror: Path,
                                                                          tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    proc = subprocess.Popen(_sweep_cmd(run_dir, benchmark_mirror, db), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while _finished(db) < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = Store(db).query("SELECT run_id, model_id, benchmark FROM eval_runs WHERE status = 'finished'")
    assert len(before) >= 1
    done = subprocess.run(_sweep_cmd(run_dir, benchmark_mirror, db), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(db)
    finished = store.query("SELECT run_id, model_id, benchmark FROM eval_runs WHERE status = 'finished'")
    assert len(finished) == 6 and not finished.duplicated(["model_id", "benchmark"]).any()
    assert set(before.run_id) <= set(finished.run_id)  # nothing finished was redone or lost
    leftovers = store.query("SELECT status, error FROM eval_runs WHERE status != 'finished'")
    assert (leftovers.status == "failed").all() and leftovers.error.str.startswith("interrupted").all()
    per_run = store.query("SELECT run_id, count(*) AS n FROM scores GROUP BY run_id")
    assert set(per_run.run_id) == set(finished.run_id) and (per_run.n == 2).all()  # acc + acc_norm, once each


@pytest.mark.slow
def test_two_concurrent_sweeps_on_one_database(run_dir: Path, benchmark_mirror: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    procs = [subprocess.Popen(_sweep_cmd(run_dir, benchmark_mirror, db), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=2400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]
    store = Store(db)
    runs = store.query("SELECT run_id, model_id, benchmark, status FROM eval_runs")
    finished = runs[runs.status == "finished"]
    assert len(finished) == 6 and not finished.duplicated(["model_id", "benchmark"]).any()
    assert (runs.status == "finished").all()  # the second sweep skipped or waited, it never re-ran a job
    scores = store.query("SELECT run_id, count(*) AS n FROM scores GROUP BY run_id")
    assert set(scores.run_id) == set(finished.run_id) and (scores.n == 2).all()
