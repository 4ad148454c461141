"""One worker per device: device planning, and a 2-worker sweep equal to the 1-worker one, every job once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sweep_checks import BENCHMARKS, assert_every_job_once, scores_by_job

from growth.foundation.errors import ConfigError
from suite.eval.evaluate import EvalOptions
from suite.eval.sweep import Distribution, sweep
from suite.eval.workers import plan_workers
from suite.store import Store


def test_workers_are_planned_per_engine_of_devices() -> None:
    assert plan_workers(None, None, 1, 8) == [] and plan_workers(1, None, 1, 8) == []  # this process
    assert plan_workers(None, "0,1,2,3,4,5,6,7", 1, 8) == [str(d) for d in range(8)]
    assert plan_workers(None, "4,5,6,7", 2, 8) == ["4,5", "6,7"]
    assert plan_workers(4, None, 2, 8) == ["0,1", "2,3", "4,5", "6,7"]
    assert plan_workers(1, "3", 1, 8) == ["3"]  # one worker, pinned
    assert plan_workers(2, None, 1, 0) == [None, None]  # no GPUs: plain processes
    for args, message in [((None, "0,1,2", 2, 8), "do not split into engines of 2"),
                          ((3, "0,1", 1, 8), "does not match --devices"),
                          ((5, None, 2, 8), "needs 10 GPUs"),
                          ((0, None, 1, 8), "--workers must be >= 1"),
                          ((None, "0,0", 1, 8), "distinct device indices"),
                          ((None, "a,b", 1, 8), "distinct device indices")]:
        with pytest.raises(ConfigError, match=message):
            plan_workers(*args)
    with pytest.raises(ConfigError, match="for the local executor"):
        Distribution(executor="ray", workers=2)
    with pytest.raises(ConfigError, match="unknown executor 'slurm'"):
        Distribution(executor="slurm")


@pytest.mark.slow
def test_two_workers_run_every_job_once_with_the_scores_of_one(four_checkpoints: Path, benchmark_mirror: Path,
                                                               tmp_path: Path) -> None:
    options = EvalOptions(benchmarks=BENCHMARKS, limit=4, backend="hf", data_dir=benchmark_mirror, batch_size=4)
    one, two = Store(tmp_path / "one.duckdb"), Store(tmp_path / "two.duckdb")
    single = sweep([str(four_checkpoints)], options, store=one, show_progress=False)
    pooled = sweep([str(four_checkpoints)], options, store=two, show_progress=False,
                   distribution=Distribution(workers=2))
    assert single.engine_loads == pooled.engine_loads == 4  # one per checkpoint, never one per job
    assert pooled.count("finished") == 8
    assert_every_job_once(two, 4)
    assert (two.query("SELECT status FROM eval_runs").status == "finished").all()
    assert scores_by_job(two) == scores_by_job(one)
    again = sweep([str(four_checkpoints)], options, store=two, show_progress=False,
                  distribution=Distribution(workers=2))
    assert again.engine_loads == 0 and again.count("skipped") == 8


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_its_job_retried(four_checkpoints: Path, benchmark_mirror: Path,
                                                                  tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    store = Store(tmp_path / "killed.duckdb")
    options = EvalOptions(benchmarks=BENCHMARKS, limit=4, backend="hf", data_dir=benchmark_mirror, batch_size=4)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 600
        while not killed and time.monotonic() < deadline:
            claimed = store.path.exists() and len(store.query("SELECT run_id FROM eval_runs")) >= 2
            workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
            if claimed and workers:
                time.sleep(3.0)  # into its job
                workers[0].kill()
                killed.append(workers[0].pid)
            time.sleep(0.2)

    hunter = threading.Thread(target=kill_a_busy_worker, daemon=True)
    hunter.start()
    report = sweep([str(four_checkpoints)], options, store=store, show_progress=False,
                   distribution=Distribution(workers=2))
    hunter.join()
    assert len(killed) == 1
    assert report.count("finished") == 8 and report.engine_loads == 4, [(r.status, r.error) for r in report.results]
    assert_every_job_once(store, 4)
    assert (store.query("SELECT status FROM eval_runs").status == "finished").all()
