"""Shard stores of a batch array merged into one: the same result as one store, idempotent, conflicts reported,
and a corrupt or foreign shard leaves the output as it was."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sweep_checks import assert_every_job_once, scores_by_job

from suite.store import Store, StoreError
from suite.store.db import now
from suite.store.shards import merge_stores

GROWBENCH = str(Path(sys.executable).parent / "growbench")
TABLES = {"models": "model_id", "eval_runs": "run_id", "scores": "run_id, task, metric, filter",
          "samples": "run_id, task, doc_id", "sample_scores": "run_id, task, doc_id, metric, filter"}


def dump(store: Store) -> dict[str, list]:
    return {t: store.query(f"SELECT * EXCLUDE (registered_at) FROM {t} ORDER BY {o}" if t == "models" else
                           f"SELECT * FROM {t} ORDER BY {o}").astype(str).values.tolist() for t, o in TABLES.items()}


@pytest.fixture(scope="module")
def shards(four_checkpoints: Path, benchmark_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two shard stores written as two tasks of a batch array would: `sweep --shard i/2 --db shard-i.duckdb`."""
    root = tmp_path_factory.mktemp("shards")
    out = []
    for i in range(2):
        db = root / f"shard-{i}.duckdb"
        proc = subprocess.run([GROWBENCH, "sweep", str(four_checkpoints), "-b", "arc_challenge", "--limit", "2",
                               "--backend", "hf", "--data-dir", str(benchmark_mirror), "--log-samples",
                               "--shard", f"{i}/2", "--db", str(db), "--no-progress"],
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out.append(db)
    return out


@pytest.mark.slow
def test_merging_shards_gives_every_job_once_and_twice_changes_nothing(shards: list[Path], tmp_path: Path,
                                                                      cli) -> None:
    out = tmp_path / "merged.duckdb"
    assert cli("db", "merge", str(out), *map(str, shards)) == 0
    merged = Store(out)
    assert_every_job_once(merged, 4, benchmarks=1)
    expected = {**scores_by_job(Store(shards[0])), **scores_by_job(Store(shards[1]))}
    assert scores_by_job(merged) == expected and len(expected) == 8  # acc + acc_norm per checkpoint
    assert len(merged.query("SELECT * FROM samples")) == 8  # 2 documents x 4 checkpoints
    per_document = [len(Store(s).query("SELECT * FROM sample_scores")) for s in shards]
    assert len(merged.query("SELECT * FROM sample_scores")) == sum(per_document) > 0
    snapshot = dump(merged)
    report = merge_stores(out, shards)
    assert report.added == {"models": 0, "eval_runs": 0, "merge_candidates": 0} and not report.conflicts
    assert dump(merged) == snapshot


@pytest.mark.slow
def test_conflicts_are_reported_never_overwritten_and_running_rows_catch_up(shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "merged.duckdb"
    merge_stores(out, [shards[0]])
    merged = Store(out)
    run_a, run_b = merged.query("SELECT run_id FROM eval_runs ORDER BY run_id").run_id.tolist()[:2]
    with merged.connect() as con:  # run_a: OUT saw it mid-sweep (still running); run_b: OUT's copy differs
        con.execute("DELETE FROM scores WHERE run_id = ?", [run_a])
        con.execute("UPDATE eval_runs SET status = 'running', finished_at = NULL WHERE run_id = ?", [run_a])
        con.execute("UPDATE eval_runs SET error = 'edited here' WHERE run_id = ?", [run_b])
    report = merge_stores(out, [shards[0]])
    assert report.updated == 1 and len(report.conflicts) == 1 and run_b in report.conflicts[0]
    runs = merged.query("SELECT run_id, status, error FROM eval_runs").set_index("run_id")
    assert runs.loc[run_a, "status"] == "finished" and runs.loc[run_b, "error"] == "edited here"
    assert scores_by_job(merged) == scores_by_job(Store(shards[0]))


def test_a_corrupt_or_foreign_shard_changes_nothing(tmp_path: Path, tiny_model: Path, cli) -> None:
    main = tmp_path / "main.duckdb"
    good = Store(tmp_path / "good.duckdb")
    model = good.register_model(tiny_model)
    run = good.start_run(model, "arc_challenge", "h", {}, suite="s")
    good.finish_run(run, [{"task": "arc_challenge", "metric": "acc", "value": 0.5, "is_primary": True}])
    Store(main).register_model(tiny_model, name="kept")
    before = main.read_bytes()
    corrupt = tmp_path / "shard-1.duckdb"
    corrupt.write_bytes(b"half a shard" * 100)
    foreign = tmp_path / "other.duckdb"
    import duckdb

    duckdb.connect(str(foreign)).execute("CREATE TABLE t (x INT)").close()
    for bad, message in [(corrupt, "is not a usable DuckDB database"), (foreign, "not a growbench store"),
                         (tmp_path / "missing.duckdb", "does not exist")]:
        with pytest.raises(StoreError, match=message):
            merge_stores(main, [good.path, bad])
        assert main.read_bytes() == before
        with pytest.raises(StoreError, match=message):
            merge_stores(tmp_path / "new.duckdb", [good.path, bad])
        assert not (tmp_path / "new.duckdb").exists()
    with pytest.raises(StoreError, match="both the output and a shard"):
        merge_stores(main, [main])
    assert cli("db", "merge", str(main), str(good.path), str(corrupt)) == 2
    assert main.read_bytes() == before
    assert cli("db", "merge", str(main), str(good.path)) == 0
    assert Store(main).query("SELECT name FROM models").name.tolist() == ["kept"]  # same fingerprint: kept


def test_a_stale_running_shard_row_merges_as_it_is(tmp_path: Path, tiny_model: Path) -> None:
    """A shard copied mid-sweep holds running rows; they merge as running, and a later merge finishes them."""
    shard = Store(tmp_path / "shard.duckdb")
    model = shard.register_model(tiny_model)
    run = shard.start_run(model, "arc_challenge", "h", {}, suite="s", owner="node-3:77")
    with shard.connect() as con:
        con.execute("UPDATE eval_runs SET heartbeat_at = ? WHERE run_id = ?", [now() - timedelta(hours=1), run])
    copy = tmp_path / "copy.duckdb"
    shutil.copy(shard.path, copy)
    out = tmp_path / "out.duckdb"
    merge_stores(out, [copy])
    shard.finish_run(run, [{"task": "arc_challenge", "metric": "acc", "value": 0.25, "is_primary": True}])
    report = merge_stores(out, [shard.path])
    assert report.updated == 1 and not report.conflicts
    assert Store(out).query("SELECT status FROM eval_runs").status.tolist() == ["finished"]
    assert Store(out).query("SELECT value FROM scores").value.tolist() == [0.25]


def test_a_shard_merged_twice_mid_sweep_reports_no_conflict(tmp_path: Path, tiny_model: Path) -> None:
    """A run still running in both copies, with a newer heartbeat in the second, is brought up to date, not a
    conflict."""
    shard = Store(tmp_path / "shard.duckdb")
    run = shard.start_run(shard.register_model(tiny_model), "arc_challenge", "h", {}, suite="s", owner="node-3:77")
    copy = tmp_path / "copy.duckdb"
    shutil.copy(shard.path, copy)
    out = tmp_path / "out.duckdb"
    merge_stores(out, [copy])
    with shard.connect() as con:
        con.execute("UPDATE eval_runs SET heartbeat_at = ? WHERE run_id = ?", [now() + timedelta(minutes=1), run])
    report = merge_stores(out, [shard.path])
    assert report.updated == 1 and not report.conflicts
    assert dump(Store(out)) == dump(shard)
    assert merge_stores(out, [copy]).conflicts  # an older copy still differs: reported, OUT kept
    assert dump(Store(out)) == dump(shard)
