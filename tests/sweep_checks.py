"""Checks shared by the sweep-distribution tests (workers, Ray, shards): every job once, scores per job."""

from __future__ import annotations

from suite.store import Store

BENCHMARKS = ("arc_challenge", "piqa")


def scores_by_job(store: Store) -> dict[tuple[str, str, str, str, str], float]:
    """Every stored score of every finished run, keyed by model fingerprint, benchmark, task, metric, filter."""
    rows = store.query("SELECT r.model_id, r.benchmark, s.task, s.metric, s.filter, s.value FROM scores s "
                       "JOIN eval_runs r USING (run_id) WHERE r.status = 'finished'")
    return {tuple(r[:5]): r[5] for r in rows.itertuples(index=False)}


def assert_every_job_once(store: Store, checkpoints: int, benchmarks: int = len(BENCHMARKS)) -> None:
    runs = store.query("SELECT model_id, benchmark, status FROM eval_runs WHERE status = 'finished'")
    assert len(runs) == checkpoints * benchmarks, runs
    assert not runs.duplicated(["model_id", "benchmark"]).any()
