"""The Ray executor on a local Ray cluster (2 CPUs): the scores of the local executor, one store writer, workers
killed mid-task (retried, or failed after the retries), the driver killed and re-run, an unreachable cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sweep_checks import BENCHMARKS, assert_every_job_once, scores_by_job

from suite.eval.evaluate import EvalOptions
from suite.eval.sweep import Distribution, sweep
from suite.store import Store

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow
GROWBENCH = str(Path(sys.executable).parent / "growbench")
TASK_TITLE = "ray::evaluate_checkpoint"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def options(benchmark_mirror: Path) -> EvalOptions:
    return EvalOptions(benchmarks=BENCHMARKS, limit=4, backend="hf", data_dir=benchmark_mirror, batch_size=4)


@pytest.fixture(scope="module")
def local_scores(four_checkpoints: Path, options: EvalOptions, tmp_path_factory: pytest.TempPathFactory) -> dict:
    store = Store(tmp_path_factory.mktemp("local") / "local.duckdb")
    sweep([str(four_checkpoints)], options, store=store, show_progress=False)
    return scores_by_job(store)


def sweep_killing_one_task(checkpoints: Path, options: EvalOptions, store: Store, retries: int) -> Any:
    """A Ray sweep during which the process of one running evaluate_checkpoint task is killed (SIGKILL), as an OOM
    killer would; returns the sweep's report."""
    kills: list[int] = []

    def hunt() -> None:
        deadline = time.monotonic() + 600
        while not kills and time.monotonic() < deadline:
            for p in psutil.process_iter(["pid", "cmdline"]):
                if " ".join(p.info["cmdline"] or []).startswith(TASK_TITLE) and p.info["pid"] not in kills:
                    time.sleep(1.0)  # let it get into the job
                    try:
                        if " ".join(p.cmdline()).startswith(TASK_TITLE):  # still on a task, not idle
                            p.kill()
                            kills.append(p.info["pid"])
                    except psutil.NoSuchProcess:
                        pass
                    break
            time.sleep(0.1)

    hunter = threading.Thread(target=hunt, daemon=True)
    hunter.start()
    report = sweep([str(checkpoints)], options, store=store, show_progress=False,
                   distribution=Distribution(executor="ray", retries=retries))
    hunter.join()
    assert len(kills) == 1, "no evaluate_checkpoint task was caught running"
    return report


def test_ray_gives_the_local_scores_and_survives_a_killed_worker(cluster: str, four_checkpoints: Path,
                                                                  options: EvalOptions, local_scores: dict,
                                                                  tmp_path: Path) -> None:
    store = Store(tmp_path / "ray.duckdb")
    report = sweep_killing_one_task(four_checkpoints, options, store, retries=2)
    assert report.count("finished") == 8, [(r.benchmark, r.status, r.error) for r in report.results]
    assert_every_job_once(store, 4)  # the killed task was retried; it wrote nothing twice and lost nothing
    assert scores_by_job(store) == local_scores
    assert store.query("SELECT DISTINCT owner FROM eval_runs").owner.tolist() == [
        f"{__import__('socket').gethostname()}:{os.getpid()}"]  # the driver wrote every row


def test_a_task_dying_past_its_retries_is_failed_then_redone_by_the_next_sweep(cluster: str, four_checkpoints: Path,
                                                                               options: EvalOptions,
                                                                               local_scores: dict,
                                                                               tmp_path: Path) -> None:
    store = Store(tmp_path / "ray0.duckdb")
    report = sweep_killing_one_task(four_checkpoints, options, store, retries=0)
    failed = [r for r in report.results if r.status == "failed"]
    assert len(failed) == 2 and report.count("finished") == 6
    assert all(r.error.startswith("Ray task failed: ") for r in failed), failed[0].error
    again = sweep([str(four_checkpoints)], options, store=store, show_progress=False,
                  distribution=Distribution(executor="ray", retries=0))
    assert again.engine_loads == 1 and again.count("skipped") == 6 and again.count("finished") == 2
    assert scores_by_job(store) == local_scores


def _finished(db: Path) -> int:
    try:
        return int(Store(db).query("SELECT count(*) AS n FROM eval_runs WHERE status = 'finished'").n.iloc[0])
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def test_killing_the_driver_then_rerunning_skips_every_finished_job(cluster: str, four_checkpoints: Path,
                                                                    benchmark_mirror: Path, local_scores: dict,
                                                                    tmp_path: Path) -> None:
    db = tmp_path / "driver.duckdb"
    cmd = [GROWBENCH, "sweep", str(four_checkpoints), "-b", ",".join(BENCHMARKS), "--limit", "4", "--backend", "hf",
           "--batch-size", "4", "--data-dir", str(benchmark_mirror), "--db", str(db), "--executor", "ray",
           "--ray-address", cluster, "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while _finished(db) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = Store(db).query("SELECT run_id FROM eval_runs WHERE status = 'finished'").run_id.tolist()
    assert 2 <= len(before) < 8
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(db)
    finished = store.query("SELECT run_id FROM eval_runs WHERE status = 'finished'").run_id.tolist()
    assert set(before) <= set(finished) and len(finished) == 8  # nothing finished was redone or lost
    left = store.query("SELECT error FROM eval_runs WHERE status != 'finished'").error
    assert left.str.startswith("interrupted").all()
    assert scores_by_job(store) == local_scores


def test_an_unreachable_cluster_is_one_line_exit_2_and_the_store_is_unchanged(four_checkpoints: Path,
                                                                              tmp_path: Path) -> None:
    db = tmp_path / "main.duckdb"
    Store(db).register_model(next((four_checkpoints / "checkpoints").iterdir()))
    before = db.read_bytes()
    proc = subprocess.run([GROWBENCH, "sweep", str(four_checkpoints), "-b", "arc_challenge", "--backend", "hf",
                           "--db", str(db), "--executor", "ray", "--ray-address", "127.0.0.1:1", "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert db.read_bytes() == before
