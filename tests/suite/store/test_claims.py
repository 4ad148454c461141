"""Claims: a checkpoint's jobs claimed together, heartbeats, and stale claims taken over from any host.

The remote owners here are faked by writing their rows (another host name, a heartbeat of our choosing): that is
all a remote process leaves in the store.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from suite.eval.evaluate import evaluate
from suite.store import Store
from suite.store.claims import Heartbeat, JobSpec, alive, claim_checkpoint, me
from suite.store.db import now

REMOTE = "gpu-node-17.cluster:4242"


def _job(benchmark: str) -> JobSpec:
    return JobSpec(benchmark, f"hash-{benchmark}", {}, {"suite": "s"})


def _set(store: Store, run_id: str, **values: object) -> None:
    with store.connect() as con:
        for column, value in values.items():
            con.execute(f"UPDATE eval_runs SET {column} = ? WHERE run_id = ?", [value, run_id])


def _runs(store: Store):
    return store.query("SELECT run_id, benchmark, status, owner, error, heartbeat_at FROM eval_runs "
                       "ORDER BY started_at")


def test_liveness_rule() -> None:
    fresh, old = now(), now() - timedelta(hours=1)
    assert alive(REMOTE, fresh) and not alive(REMOTE, old)
    assert alive(me(), fresh) and not alive(me(), old)
    assert not alive(f"{me().rpartition(':')[0]}:999999999", fresh)  # this host, process gone: stale at once
    assert not alive(None, fresh) and not alive(REMOTE, None)


def test_a_checkpoint_is_claimed_whole_and_a_remote_claim_is_busy_until_its_heartbeat_stops(store: Store) -> None:
    claims = claim_checkpoint(store, "m1", [_job("a"), _job("b")])
    assert [c[0] for c in claims.values()] == ["run", "run"]
    for run_id in (claims["a"][1], claims["b"][1]):
        _set(store, run_id, owner=REMOTE)  # as if another host had claimed them
    _set(store, claims["a"][1], heartbeat_at=now() - timedelta(seconds=5))
    _set(store, claims["b"][1], heartbeat_at=now() - timedelta(hours=2))  # that host died two hours ago
    again = claim_checkpoint(store, "m1", [_job("a"), _job("b")])
    assert again["a"] == ("busy", REMOTE)
    assert again["b"][0] == "run" and again["b"][1] != claims["b"][1]
    runs = _runs(store).set_index("run_id")
    assert runs.loc[claims["b"][1], "status"] == "failed"
    assert runs.loc[claims["b"][1], "error"] == f"interrupted: {REMOTE} owned it, its heartbeat stopped"
    assert runs.loc[again["b"][1], "owner"] == me() and runs.loc[claims["a"][1], "status"] == "running"
    assert claim_checkpoint(store, "m1", [_job("a")], stale_after=1.0)["a"][0] == "run"  # a shorter timeout


def test_heartbeat_keeps_claims_fresh_and_a_finished_takeover_is_not_overwritten(store: Store) -> None:
    run_id = claim_checkpoint(store, "m1", [_job("a")])["a"][1]
    _set(store, run_id, heartbeat_at=now() - timedelta(hours=1))
    with Heartbeat(store, interval=0.05):
        time.sleep(0.5)
    beat = _runs(store).heartbeat_at.iloc[0]
    assert now() - beat < timedelta(seconds=5)
    # Another host takes the job over while this process was stalled; our late result must not land on it.
    _set(store, run_id, owner=REMOTE, heartbeat_at=now() - timedelta(hours=1))
    claim_checkpoint(store, "m1", [_job("a")])
    assert store.finish_run(run_id, [{"task": "a", "metric": "acc", "value": 1.0, "is_primary": True}]) is False
    assert store.query("SELECT count(*) AS n FROM scores").n.iloc[0] == 0


def test_a_dead_remote_owners_job_is_rerun_by_the_next_evaluation(tiny_model: Path, benchmark_mirror: Path,
                                                                   store: Store) -> None:
    kwargs = dict(benchmarks=["arc_challenge"], limit=2, backend="hf", data_dir=benchmark_mirror, store=store)
    (first,) = evaluate(tiny_model, **kwargs)
    assert first.status == "finished"
    # Turn the finished run into a claim held by a process on another host that then died.
    with store.connect() as con:
        con.execute("DELETE FROM scores WHERE run_id = ?", [first.run_id])
    _set(store, first.run_id, status="running", finished_at=None, owner=REMOTE, heartbeat_at=now())
    (busy,) = evaluate(tiny_model, **kwargs)
    assert busy.status == "busy" and REMOTE in busy.error  # its heartbeat is fresh: hands off
    _set(store, first.run_id, heartbeat_at=now() - timedelta(hours=1))
    (redone,) = evaluate(tiny_model, **kwargs)
    assert redone.status == "finished" and redone.score == first.score and redone.run_id != first.run_id
    runs = _runs(store).set_index("run_id")
    assert runs.loc[first.run_id, "status"] == "failed" and "heartbeat stopped" in runs.loc[first.run_id, "error"]
    assert (runs.status == "finished").sum() == 1
