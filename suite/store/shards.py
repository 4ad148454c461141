"""Merge shard stores into one: `growbench db merge OUT SHARD...`, after a batch array of
`growbench sweep --shard I/N --db shard-I.duckdb` (Slurm and the like, where hosts share no reliable file lock).

Rows are matched by identity: models by model_id (the content fingerprint), evaluation runs by run_id (with their
scores, per-document values and samples), merge candidates by candidate_key. A row OUT lacks is copied; an identical one changes nothing,
so merging a shard twice is a no-op; a run OUT holds as 'running' that the shard holds finished or failed, or still
running with a newer heartbeat, is brought up to date (a shard merged mid-sweep, then again). Any other difference is a conflict: reported, and OUT keeps its
row. Every shard is opened and checked before OUT is touched and all writes are one transaction, so a corrupt shard
leaves OUT as it was; a new OUT is built under a temporary name and renamed into place.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.store.db import Store, StoreError
from suite.store.schema import MIGRATIONS

# Model columns that must agree for one fingerprint: its lineage. Name, path, meta and registration time describe
# where and how a host registered it and may differ between hosts; OUT keeps its own.
_MODEL_FIELDS = ("kind", "parents", "growth", "training_run", "step", "tokens", "merge")
_RUN_TABLES = ("scores", "sample_scores", "samples")  # rows that belong to one run and travel with it


@dataclass
class MergeReport:
    out: Path
    shards: list[Path]
    added: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    updated: int = 0  # running runs brought up to date (finished, failed, or a newer heartbeat)
    conflicts: list[str] = field(default_factory=list)
    duplicate_jobs: int = 0  # (model, benchmark, config) with more than one finished run after the merge


def check_shard(path: Path) -> int:
    """Open a shard read-only and return its schema version; a missing, corrupt or foreign file is a StoreError."""
    import duckdb

    if not path.is_file():
        raise StoreError(f"shard store {path} does not exist")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        raise StoreError(f"shard store {path} is not a usable DuckDB database ({str(e).splitlines()[0]}); "
                         "nothing was merged") from None
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if not {"schema_version", "models", "eval_runs", "scores", "samples"} <= tables:
            raise StoreError(f"{path} is a DuckDB file but not a growbench store (no eval_runs/models tables); "
                             "nothing was merged")
        version = con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
    finally:
        con.close()
    if version > len(MIGRATIONS):
        raise StoreError(f"shard store {path} has schema version {version}, newer than this growbench "
                         f"({len(MIGRATIONS)}); upgrade growbench")
    return version


def merge_stores(out: str | Path, shards: list[str | Path]) -> MergeReport:
    """Merge `shards` into `out` (created if absent); see the module docstring."""
    out_path = Path(out)
    paths = [Path(s) for s in shards]
    if not paths:
        raise StoreError("give at least one shard store to merge")
    for p in paths:
        if p.resolve() == out_path.resolve():
            raise StoreError(f"{p} is both the output and a shard; merge into another file")
        check_shard(p)
    report = MergeReport(out_path, paths)
    if out_path.exists():
        _merge_into(Store(out_path), paths, report)
        return report
    tmp = out_path.parent / f".{out_path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _merge_into(Store(tmp), paths, report)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return report


def _columns(con: Any, database: str, table: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND "
                                      "table_name = ? ORDER BY column_index", [database, table]).fetchall()]


def _ours(con: Any, table: str) -> list[str]:
    return _columns(con, con.execute("SELECT current_database()").fetchone()[0], table)


def _select(con: Any, alias: str, table: str) -> str:
    """SELECT list reading `alias.table` in OUT's column order (NULL for columns an older shard lacks)."""
    theirs = set(_columns(con, alias, table))
    return ", ".join(f"t.{c}" if c in theirs else f"NULL AS {c}" for c in _ours(con, table))


def _differs(con: Any, alias: str, table: str, ours: str, skip: tuple[str, ...] = ()) -> str:
    """SQL true when row `ours` and shard row `t` differ in a column both have."""
    theirs = set(_columns(con, alias, table))
    return " OR ".join(f"{ours}.{c} IS DISTINCT FROM t.{c}" for c in _ours(con, table)
                       if c in theirs and c not in skip)


def _merge_into(store: Store, shards: list[Path], report: MergeReport) -> None:
    with store.connect() as con:
        for i, shard in enumerate(shards):
            alias = f"shard_{i}"
            con.execute(f"ATTACH '{_quote(shard)}' AS {alias} (READ_ONLY)")
            try:
                _merge_one(con, alias, shard, report)
            finally:
                con.execute(f"DETACH {alias}")
        report.duplicate_jobs = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM eval_runs WHERE status = 'finished' GROUP BY model_id, benchmark, "
            "config_hash HAVING count(*) > 1)").fetchone()[0]


def _quote(path: Path) -> str:
    return str(path.absolute()).replace("'", "''")


def _add(report: MergeReport, table: str, count: int) -> None:
    report.added[table] = report.added.get(table, 0) + count


def _merge_one(con: Any, s: str, shard: Path, report: MergeReport) -> None:
    differs = " OR ".join(f"m.{c} IS DISTINCT FROM t.{c}" for c in _MODEL_FIELDS)
    for model_id, in con.execute(f"SELECT t.model_id FROM {s}.models t JOIN models m USING (model_id) "
                                 f"WHERE {differs}").fetchall():
        report.conflicts.append(f"{shard}: model {model_id} has a different lineage (kind, parents, growth, "
                                "training or merge); kept the existing row")
    _add(report, "models", _insert_new(con, s, "models", "model_id"))

    differs = _differs(con, s, "eval_runs", "r")
    progressed = [r[0] for r in con.execute(
        f"SELECT t.run_id FROM {s}.eval_runs t JOIN eval_runs r USING (run_id) WHERE r.status = 'running' AND "
        f"(t.status IN ('finished', 'failed') OR t.status = 'running' AND t.heartbeat_at > r.heartbeat_at) AND "
        f"r.model_id = t.model_id AND r.benchmark = t.benchmark AND r.config_hash = t.config_hash").fetchall()]
    for run_id, in con.execute(f"SELECT t.run_id FROM {s}.eval_runs t JOIN eval_runs r USING (run_id) "
                               f"WHERE ({differs})").fetchall():
        if run_id not in progressed:
            report.conflicts.append(f"{shard}: run {run_id} differs from the stored run of that id; kept the "
                                    "existing row")
    per_run = [t for t in _RUN_TABLES if t in _tables(con, s)]  # an older shard may predate sample_scores
    if progressed:
        con.execute("CREATE OR REPLACE TEMP TABLE merge_progressed AS SELECT unnest(?::VARCHAR[]) AS run_id",
                    [progressed])
        for table in (*_RUN_TABLES, "eval_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM merge_progressed)")
        report.updated += len(progressed)
    new_runs = f"(SELECT run_id FROM {s}.eval_runs WHERE run_id NOT IN (SELECT run_id FROM eval_runs))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE merge_new_runs AS {new_runs}")
    for table in per_run:
        con.execute(f"INSERT INTO {table} SELECT {_select(con, s, table)} FROM {s}.{table} t "
                    "WHERE t.run_id IN (SELECT run_id FROM merge_new_runs)")
    count = con.execute(f"INSERT INTO eval_runs SELECT {_select(con, s, 'eval_runs')} FROM {s}.eval_runs t "
                        "WHERE t.run_id IN (SELECT run_id FROM merge_new_runs)").fetchone()[0]
    _add(report, "eval_runs", count - len(progressed))

    if "merge_candidates" in _tables(con, s):
        differs = _differs(con, s, "merge_candidates", "c", skip=("created_at",))
        for key, in con.execute(f"SELECT t.candidate_key FROM {s}.merge_candidates t JOIN merge_candidates c "
                                f"USING (candidate_key) WHERE {differs}").fetchall():
            report.conflicts.append(f"{shard}: merge candidate {key} differs; kept the existing row")
        _add(report, "merge_candidates", _insert_new(con, s, "merge_candidates", "candidate_key"))


def _tables(con: Any, database: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                      [database]).fetchall()}


def _insert_new(con: Any, s: str, table: str, key: str) -> int:
    return con.execute(f"INSERT INTO {table} SELECT {_select(con, s, table)} FROM {s}.{table} t "
                       f"WHERE t.{key} NOT IN (SELECT {key} FROM {table})").fetchone()[0]
