"""Claiming evaluation jobs (model x benchmark x config hash) in the shared store: per checkpoint, with heartbeats.

Several sweeps may share one database (DuckDB lets one process write at a time; the store's transactions are short,
so they interleave). A claim is a 'running' eval_runs row carrying its owner (host:pid) and a heartbeat
(`heartbeat_at`), which the owning process refreshes every HEARTBEAT_S while it lives (`Heartbeat`). Before a
checkpoint's jobs run, ONE transaction looks at all their rows, so one process gets all of a checkpoint and loads its
engine once: a finished row means skip; a live running row means someone else is on it (busy); a stale running row is
marked failed as interrupted and the job is claimed afresh.

A running row is stale when its heartbeat is older than `stale_after` (default STALE_AFTER_S), from any host, or, on
this host, when its process is gone (kill -9 is taken over at once). A node that died on another host is therefore
taken over after `stale_after`; keep it well above HEARTBEAT_S plus the clock skew between the hosts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from suite.store.db import Store, StoreError, now

log = logging.getLogger(__name__)
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


@dataclass(frozen=True)
class JobSpec:
    """One job of a checkpoint to claim: its benchmark, config hash and the fields of its eval_runs row."""

    benchmark: str
    config_hash: str
    config: dict[str, Any]
    run_fields: dict[str, Any]


def me() -> str:
    """This process as a claim owner: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_gone(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return False  # another host: only its heartbeat tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def alive(owner: str | None, heartbeat: datetime | None, *, stale_after: float = STALE_AFTER_S,
          at: datetime | None = None) -> bool:
    """Whether a running row's owner still works on it: a fresh heartbeat and, on this host, a live process."""
    if not owner or heartbeat is None:
        return False  # rows written before owners (or heartbeats) were recorded cannot be running any more
    if (at or now()) - heartbeat > timedelta(seconds=stale_after):
        return False
    return not _pid_gone(owner)


def claim_checkpoint(store: Store, model_id: str, jobs: list[JobSpec], *, force: bool = False,
                     stale_after: float = STALE_AFTER_S) -> dict[str, tuple[str, str]]:
    """Claim every job of one checkpoint in one transaction. Per benchmark: ("run", new run_id) | ("finished",
    run_id of the result) | ("busy", owner of the live run)."""
    owner = me()
    out: dict[str, tuple[str, str]] = {}
    with store.connect() as con:
        at = now()
        for job in jobs:
            rows = con.execute("SELECT run_id, status, owner, coalesce(heartbeat_at, started_at) FROM eval_runs "
                               "WHERE model_id = ? AND benchmark = ? AND config_hash = ? "
                               "AND status IN ('running', 'finished') ORDER BY started_at DESC",
                               [model_id, job.benchmark, job.config_hash]).fetchall()
            finished = [r for r in rows if r[1] == "finished"]
            if finished and not force:
                out[job.benchmark] = ("finished", finished[0][0])
                continue
            live = [who for _, status, who, beat in rows if status == "running" and who != owner
                    and alive(who, beat, stale_after=stale_after, at=at)]
            if live:
                out[job.benchmark] = ("busy", live[0])
                continue
            for run_id, status, who, beat in rows:
                if status == "running":
                    why = "its heartbeat stopped" if who and not _pid_gone(who) else "it ended before finishing"
                    con.execute("UPDATE eval_runs SET status = 'failed', finished_at = ?, error = ? WHERE run_id = ?",
                                [at, f"interrupted: {who or 'an earlier process'} owned it, {why}", run_id])
            run_id = store.start_run(model_id, job.benchmark, job.config_hash, job.config, owner=owner, con=con,
                                     **job.run_fields)
            out[job.benchmark] = ("run", run_id)
    return out


def beat(store: Store, owner: str | None = None) -> int:
    """Refresh the heartbeat of every running row `owner` (default: this process) holds; returns how many."""
    with store.connect() as con:
        row = con.execute("UPDATE eval_runs SET heartbeat_at = ? WHERE owner = ? AND status = 'running' "
                          "RETURNING run_id", [now(), owner or me()]).fetchall()
    return len(row)


class Heartbeat:
    """A daemon thread that keeps this process's claims alive while the block runs (see the module docstring)."""

    def __init__(self, store: Store, interval: float = HEARTBEAT_S) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="growbench-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                beat(self.store)
            except StoreError as e:  # locked for long: the next beat may get through before the claims go stale
                log.warning("heartbeat skipped: %s", e)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
