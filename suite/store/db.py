"""The DuckDB store: models with their lineage, evaluation runs, scores and samples. Every command uses it.

DuckDB lets one process write a database file at a time, and a reader cannot open it while a writer holds it. So the
store never holds a connection: each operation opens the file, runs one transaction and closes it, retrying while
another process holds the lock. Two sweeps on one file therefore interleave their short writes instead of failing,
and a process killed mid-transaction loses only that uncommitted transaction. Within one process, connections are
taken one at a time (a lock), so a heartbeat thread (suite/store/claims.py) never races the main thread's writes.

Every SQL statement that names the store's tables lives in this package: the schema and its migrations
(suite/store/schema.py), writes and single-row reads here, job claims (suite/store/claims.py), the read queries
of reports and selection (suite/store/queries.py), per-document values (suite/store/samples.py) and the merge of
shard stores (suite/store/shards.py).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from growth.checkpoint import Checkpoint
from growth.foundation.errors import GrowbenchError
from growth.foundation.settings import db_path
from suite.store.schema import MIGRATIONS


class StoreError(GrowbenchError):
    """The database file is unusable (corrupt, or locked for too long)."""


LOCK_TIMEOUT_S = 120.0
_IN_PROCESS = threading.RLock()  # DuckDB refuses a read-only connection beside an open read-write one in-process


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_lock_error(e: Exception) -> bool:
    text = str(e).lower()
    return "lock" in text or "conflict" in text or "being used by another process" in text


class Store:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = db_path(path)
        self._migrated = False

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[Any]:
        """One short transaction on the file; commits on success, rolls back on error, always closes."""
        import duckdb

        if read_only and not self.path.exists():
            raise StoreError(f"no results database at {self.path}; run `growbench eval` or `growbench sweep` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _IN_PROCESS:
            yield from self._transaction(read_only, duckdb)

    def _transaction(self, read_only: bool, duckdb: Any) -> Iterator[Any]:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as e:
                if _is_lock_error(e) and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.02, 0.2))
                    continue
                if _is_lock_error(e):
                    raise StoreError(f"{self.path} stayed locked by another process for {LOCK_TIMEOUT_S:.0f} s") from None
                raise StoreError(f"{self.path} is not a usable DuckDB database ({str(e).splitlines()[0]}); "
                                 "it was left untouched") from None
        try:
            if not read_only and not self._migrated:
                self._migrate(con)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    def _migrate(self, con: Any) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] or 0
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} has schema version {version}, newer than this growbench "
                             f"({len(MIGRATIONS)}); upgrade growbench")
        for i in range(version, len(MIGRATIONS)):
            con.execute("BEGIN TRANSACTION")
            con.execute(MIGRATIONS[i])
            con.execute("INSERT INTO schema_version VALUES (?)", [i + 1])
            con.execute("COMMIT")
        self._migrated = True

    def query(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a read query and return a pandas DataFrame."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, list(params)).df()

    # --- models -------------------------------------------------------------------------------------------------

    def register_model(self, path: str | Path, *, kind: str | None = None, name: str | None = None,
                       parents: list[str] | None = None, meta: dict[str, Any] | None = None) -> str:
        """Record a checkpoint and its lineage (from growth.json / training.json / merge.json); returns model_id.

        The id is the checkpoint's content fingerprint, so registering the same weights again updates the row; a
        name or meta given at an earlier registration is kept unless a new one is given. A selector's scratch merge
        (kind 'candidate') never takes over a model's row, and the same weights registered for real replace its
        scratch row whole.
        """
        ckpt = Checkpoint.open(path)
        model_id = ckpt.fingerprint()
        lineage = {f: json.loads((ckpt.path / f"{f}.json").read_text())
                   for f in ("growth", "training", "merge") if (ckpt.path / f"{f}.json").exists()}
        training = lineage.get("training", {})
        merge = lineage.get("merge")
        growth = lineage.get("growth")
        if kind is None:
            kind = "merged" if merge else "trained" if training else "grown" if growth else "seed"
        if parents is None:
            parents = [p["fingerprint"] for p in (merge or {}).get("models", [])] if merge else []
            if training.get("parent_fingerprint"):
                parents = [training["parent_fingerprint"]]
            elif growth and growth.get("source", {}).get("fingerprint"):
                parents = [growth["source"]["fingerprint"]]
        default = f"{training['run_id']}@{training['step']}" if training.get("run_id") else ckpt.path.name
        with self.connect() as con:
            old = con.execute("SELECT name, meta, kind = 'candidate' FROM models WHERE model_id = ?",
                              [model_id]).fetchone()
            if old and kind == "candidate" and not old[2]:
                return model_id
            if old and old[2] and kind != "candidate":
                old = None
            row = [model_id, name or (old[0] if old else default), str(ckpt.path.absolute()), kind,
                   json.dumps(parents), json.dumps(growth), training.get("run_id"), training.get("step"),
                   training.get("tokens"), json.dumps(merge),
                   json.dumps(meta) if meta is not None else (old[1] if old else "{}"), now()]
            con.execute("DELETE FROM models WHERE model_id = ?", [model_id])
            con.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return model_id

    def register_external(self, name: str) -> str:
        """A model known only by name (a hub id, results someone else produced): kind 'external', its id derived
        from the name, so importing more results for it finds the same row."""
        model_id = "name-" + hashlib.sha256(name.encode()).hexdigest()[:16]
        with self.connect() as con:
            if con.execute("SELECT 1 FROM models WHERE model_id = ?", [model_id]).fetchone() is None:
                con.execute("INSERT INTO models (model_id, name, kind, parents, meta, registered_at) "
                            "VALUES (?, ?, 'external', '[]', '{}', ?)", [model_id, name, now()])
        return model_id

    # --- evaluation runs ----------------------------------------------------------------------------------------

    def start_run(self, model_id: str, benchmark: str, config_hash: str, config: dict[str, Any], *,
                  suite: str | None = None, lm_eval_version: str | None = None, backend: str | None = None,
                  dtype: str | None = None, limit: int | None = None, num_fewshot: int | None = None,
                  seed: int | None = None, owner: str | None = None, con: Any = None) -> str:
        """Insert a 'running' row; pass `con` to do it inside a caller's transaction (see suite/store/claims.py)."""
        started = now()
        fields = dict(suite=suite, lm_eval_version=lm_eval_version, backend=backend, dtype=dtype, limit=limit,
                      num_fewshot=num_fewshot, seed=seed)
        columns = dict(status="running", started_at=started, owner=owner, heartbeat_at=started)
        if con is not None:
            return _insert_run(con, model_id, benchmark, config_hash, config, fields, **columns)
        with self.connect() as con:
            return _insert_run(con, model_id, benchmark, config_hash, config, fields, **columns)

    def finish_run(self, run_id: str, scores: list[dict[str, Any]], samples: list[dict[str, Any]] | None = None,
                   sample_scores: list[dict[str, Any]] | None = None) -> bool:
        """Store a run's scores (per-document values, full samples when given) and mark it finished, all in one
        transaction.

        Only a row that is still 'running' is finished: one taken over after a stale heartbeat (suite/store/claims.py)
        keeps its 'interrupted' mark and the result is dropped (False), so a job never ends with two results."""
        with self.connect() as con:
            if not _still_running(con, run_id):
                return False
            con.execute("DELETE FROM scores WHERE run_id = ?", [run_id])
            _insert_rows(con, run_id, scores, samples, sample_scores)
            con.execute("UPDATE eval_runs SET status = 'finished', finished_at = ?, error = NULL WHERE run_id = ?",
                        [now(), run_id])
        return True

    def fail_run(self, run_id: str, error: str, traceback: str | None = None) -> bool:
        """Mark a still-running run failed with its one-line `error`, keeping the full `traceback` (when there is
        one) beside it; False when the run was taken over meanwhile."""
        with self.connect() as con:
            if not _still_running(con, run_id):
                return False
            con.execute("UPDATE eval_runs SET status = 'failed', finished_at = ?, error = ?, traceback = ? "
                        "WHERE run_id = ?", [now(), error, traceback, run_id])
        return True

    def import_runs(self, model_id: str, runs: list[dict[str, Any]]) -> list[str | None]:
        """Store finished runs produced elsewhere (imported lm-eval results) in one transaction; a run whose job
        (model, benchmark, config hash) already has a finished result is skipped (None in the returned run ids)."""
        out: list[str | None] = []
        with self.connect() as con:
            for run in runs:
                done = con.execute("SELECT run_id FROM eval_runs WHERE model_id = ? AND benchmark = ? AND "
                                   "config_hash = ? AND status = 'finished'",
                                   [model_id, run["benchmark"], run["config_hash"]]).fetchone()
                if done:
                    out.append(None)
                    continue
                run_id = _insert_run(con, model_id, run["benchmark"], run["config_hash"], run["config"],
                                     run["run_fields"], status="finished", started_at=run["started_at"],
                                     finished_at=run["finished_at"], owner=run["owner"], deviation=run["deviation"])
                _insert_rows(con, run_id, run["scores"], run["samples"], run["sample_scores"])
                out.append(run_id)
        return out

    def primary_score(self, run_id: str) -> tuple[float | None, float | None, int | None]:
        """(value, stderr, n) of a run's headline metric; Nones when the run stored none."""
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT value, stderr, n FROM scores WHERE run_id = ? AND is_primary", [run_id]).fetchone()
        return tuple(row) if row else (None, None, None)  # type: ignore[return-value]

    # --- the selector's cache of evaluated merge candidates ----------------------------------------------------

    def cached_candidate(self, key: str) -> tuple[float, dict[str, float], str] | None:
        """(dev score, per-benchmark scores, model_id) of a candidate merged and evaluated before, or None."""
        with self.connect() as con:
            row = con.execute("SELECT score, scores, model_id FROM merge_candidates WHERE candidate_key = ?",
                              [key]).fetchone()
        return (row[0], json.loads(row[1]), row[2]) if row else None

    def cache_candidate(self, key: str, members: list[str], weights: list[float], dev: dict[str, Any],
                        model_id: str, score: float, scores: dict[str, float]) -> None:
        with self.connect() as con:
            con.execute("INSERT INTO merge_candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [key, json.dumps(members), json.dumps(weights), json.dumps(dev), model_id, score,
                         json.dumps(scores), now()])


def _insert_run(con: Any, model_id: str, benchmark: str, config_hash: str, config: dict[str, Any],
                fields: dict[str, Any], **columns: Any) -> str:
    """Insert one eval_runs row: the job, its run fields (as `start_run` takes them) and the given `columns`
    (status, times, owner, ...); returns its new run_id."""
    run_id = uuid.uuid4().hex[:12]
    row = {"run_id": run_id, "model_id": model_id, "benchmark": benchmark, "suite": fields.get("suite"),
           "config_hash": config_hash, "config": json.dumps(config, default=str),
           "lm_eval_version": fields.get("lm_eval_version"), "backend": fields.get("backend"),
           "dtype": fields.get("dtype"), "limit_n": fields.get("limit"), "num_fewshot": fields.get("num_fewshot"),
           "seed": fields.get("seed"), **columns}
    con.execute(f"INSERT INTO eval_runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return run_id


def _insert_rows(con: Any, run_id: str, scores: list[dict[str, Any]], samples: list[dict[str, Any]] | None,
                 sample_scores: list[dict[str, Any]] | None) -> None:
    from suite.store.samples import insert_sample_scores

    if sample_scores:
        insert_sample_scores(con, run_id, sample_scores)
    con.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [[run_id, s["task"], s["metric"], s.get("filter"), s["value"], s.get("stderr"), s.get("n"),
                      bool(s.get("is_primary", False))] for s in scores])
    if samples:
        con.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)",
                        [[run_id, s["task"], s["doc_id"], json.dumps(s["data"], default=str)] for s in samples])


def _still_running(con: Any, run_id: str) -> bool:
    row = con.execute("SELECT status FROM eval_runs WHERE run_id = ?", [run_id]).fetchone()
    return row is not None and row[0] == "running"
