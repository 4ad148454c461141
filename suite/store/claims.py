"""Claiming one evaluation job (model x benchmark x config hash) in the shared store.

Several sweeps may share one database (DuckDB lets one process write at a time; the store's transactions are short,
so they interleave). Before a job runs, one transaction looks at its rows: a finished row means skip; a 'running'
row of a live process (same host, pid alive; another host counts as alive) means someone else is on it; a
'running' row whose process is gone (kill -9, power loss) is marked failed as interrupted and the job is claimed
afresh. So a re-run after a kill neither loses a finished result nor leaves two live rows for one job.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from suite.store.db import Store, now


def me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(owner: str | None) -> bool:
    if not owner:
        return False  # rows written before owners were recorded cannot be running any more
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def claim(store: Store, model_id: str, benchmark: str, config_hash: str, config: dict[str, Any], *,
          force: bool = False, **run_fields: Any) -> tuple[str, str]:
    """("run", new run_id) | ("finished", run_id of the result) | ("busy", owner of the live run)."""
    owner = me()
    with store.connect() as con:
        rows = con.execute("SELECT run_id, status, owner FROM eval_runs WHERE model_id = ? AND benchmark = ? "
                           "AND config_hash = ? AND status IN ('running', 'finished') ORDER BY started_at DESC",
                           [model_id, benchmark, config_hash]).fetchall()
        finished = [r for r in rows if r[1] == "finished"]
        if finished and not force:
            return "finished", finished[0][0]
        for run_id, status, who in rows:
            if status != "running":
                continue
            if alive(who) and who != owner:
                return "busy", who
            con.execute("UPDATE eval_runs SET status = 'failed', finished_at = ?, error = ? WHERE run_id = ?",
                        [now(), f"interrupted: {who or 'an earlier process'} ended before finishing", run_id])
        return "run", store.start_run(model_id, benchmark, config_hash, config, owner=owner, con=con, **run_fields)
