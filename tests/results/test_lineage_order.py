"""Leaderboard columns in lineage order, by name (a short id only where names repeat), without the selector's
scratch merges unless asked for; the order itself on bare rows; and the migration that marks old scratch merges."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from results_store import SUITE, add_run, variant

from results.leaderboard import build_leaderboard
from results.lineage import lineage_order
from suite.store import Store
from suite.store.names import labels, model_labels
from suite.store.queries import find_models
from suite.store.schema import MIGRATIONS


def row(model_id: str, kind: str, registered: int, parents: list[str] = (), run: str | None = None,
        step: int | None = None) -> dict:
    return {"model_id": model_id, "name": model_id, "kind": kind, "parents": json.dumps(list(parents)),
            "training_run": run, "step": step, "registered_at": f"2026-01-01 00:00:{registered:02d}"}


def test_lineage_order_of_rows() -> None:
    """seed, grown stages, checkpoints by step, merged; lone models after, by registration; parents not shown
    (`known`) still link a family."""
    rows = [row("merged", "merged", 9, ["ck64", "ck32"]), row("ck64", "trained", 5, ["grown2"], "r", 64),
            row("hub", "external", 0), row("ck32", "trained", 6, ["grown2"], "r", 32),
            row("seed", "seed", 2), row("grown2", "grown", 4, ["grown1"]), row("grown1", "grown", 3, ["seed"]),
            row("lone", "seed", 1), row("stage", "grown", 7, ["grown1"])]
    order = [m["model_id"] for m in lineage_order(rows)]  # stage: a sibling of grown2 that the lineage leaves
    assert order == ["seed", "grown1", "stage", "grown2", "ck32", "ck64", "merged", "hub", "lone"]
    shown = [r for r in rows if r["model_id"] in ("ck64", "ck32", "merged")]
    linked = [m["model_id"] for m in lineage_order(shown, rows)]
    assert linked == ["ck32", "ck64", "merged"]
    assert [m["model_id"] for m in lineage_order(shown)] == ["ck32", "ck64", "merged"]  # via the merge alone


def test_labels_add_a_short_id_only_where_names_repeat() -> None:
    shown = labels([("a" * 16, "step-32"), ("b" * 16, "step-32"), ("c" * 16, "tiny-seed"), ("d" * 16, None)])
    assert shown == {"a" * 16: "step-32 (aaaaaaaa)", "b" * 16: "step-32 (bbbbbbbb)", "c" * 16: "tiny-seed",
                     "d" * 16: "dddddddd"}


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict:
    """seed -> checkpoints 64, 32 (registered in that order) -> merged, a scratch candidate merged from them, and
    an unrelated model registered first; every one evaluated."""
    root = tmp_path_factory.mktemp("lineage")
    store = Store(root / "results.duckdb")
    ids = {"other": store.register_model(variant(tiny_model, root, "other"), name="other")}
    ids["seed"] = store.register_model(variant(tiny_model, root, "seed"), kind="seed", name="seed")
    for step in (64, 32):
        ids[step] = store.register_model(variant(tiny_model, root, f"step-{step}", training={
            "run_id": "run", "step": step, "tokens": step * 1000, "parent_fingerprint": ids["seed"]}))
    merge = {"models": [{"fingerprint": ids[s], "path": f"step-{s}", "weight": 0.5} for s in (32, 64)]}
    ids["candidate"] = store.register_model(variant(tiny_model, root, "candidate-0123456789abcdef", merge=merge),
                                            kind="candidate")
    ids["merged"] = store.register_model(variant(tiny_model, root, "final", merge=merge), name="final")
    for model_id in ids.values():
        add_run(store, model_id, "mmlu", 0.5)
    return {"store": store, "ids": ids, "root": root}


def test_leaderboard_columns_in_lineage_order_without_candidates(family: dict) -> None:
    store = family["store"]
    board = build_leaderboard(store, suite=SUITE)
    assert [c.label for c in board.columns] == ["seed", "run@32", "run@64", "final", "other"]
    wide = build_leaderboard(store, suite=SUITE, candidates=True)
    assert [c.label for c in wide.columns] == ["seed", "run@32", "run@64", "candidate-0123456789abcdef", "final",
                                               "other"]
    # a glob gives its matches in lineage order too; the candidate is found by its own name only
    assert [c.label for c in build_leaderboard(store, suite=SUITE, models=["run@*", "seed"]).columns] == [
        "run@32", "run@64", "seed"]
    assert [m["name"] for m in find_models(store, "*")].count("candidate-0123456789abcdef") == 0
    assert [m["kind"] for m in find_models(store, "candidate-0123456789abcdef")] == ["candidate"]


def test_a_candidate_merged_for_real_becomes_a_model(tmp_path: Path, tiny_model: Path) -> None:
    """`growbench merge` of the same mix a search tried: the row is the merge's now (kind and name), not scratch."""
    store = Store(tmp_path / "results.duckdb")
    scratch = variant(tiny_model, tmp_path, "candidate-0123456789abcdef", merge={"models": []})
    model_id = store.register_model(scratch, kind="candidate")
    built = scratch.rename(tmp_path / "soup")
    assert store.register_model(built) == model_id
    assert [(m["name"], m["kind"]) for m in find_models(store, model_id)] == [("soup", "merged")]
    again = built.rename(tmp_path / "candidate-fedcba9876543210")  # a later search tries the same mix
    assert store.register_model(again, kind="candidate") == model_id
    assert [(m["name"], m["kind"], m["path"]) for m in find_models(store, model_id)] == [
        ("soup", "merged", str(tmp_path / "soup"))]


def test_same_names_get_short_ids(family: dict, tiny_model: Path) -> None:
    store, ids = family["store"], family["ids"]
    twin = store.register_model(variant(tiny_model, family["root"], "twin"), name="other")
    assert model_labels(store, [ids["other"]]) == {ids["other"]: "other"}
    assert model_labels(store, [ids["other"]], distinct_in_store=True) == {ids["other"]: f"other ({ids['other'][:8]})"}
    assert model_labels(store, [ids["other"], twin])[twin] == f"other ({twin[:8]})"
    add_run(store, twin, "mmlu", 0.4)
    labels_shown = [c.label for c in build_leaderboard(store, suite=SUITE).columns]
    assert labels_shown[-2:] == [f"other ({ids['other'][:8]})", f"other ({twin[:8]})"]


def test_migration_marks_old_scratch_merges_as_candidates(tmp_path: Path) -> None:
    """A store written before version 7 has its scratch merges as kind 'merged'; the upgrade marks them (only
    those in a candidate-<key> folder with a merge_candidates row; a built merge stays 'merged')."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    for i, sql in enumerate(MIGRATIONS[:6]):
        con.execute(sql)
        con.execute("INSERT INTO schema_version VALUES (?)", [i + 1])
    for model_id, folder in (("scratch", "/w/candidates/candidate-0123456789abcdef"), ("built", "/w/final")):
        con.execute("INSERT INTO models (model_id, name, path, kind) VALUES (?, ?, ?, 'merged')",
                    [model_id, model_id, folder])
        con.execute("INSERT INTO merge_candidates (candidate_key, model_id) VALUES (?, ?)", [model_id, model_id])
    con.close()
    store = Store(path)
    with store.connect():
        pass
    kinds = dict(store.query("SELECT model_id, kind FROM models").values.tolist())
    assert kinds == {"scratch": "candidate", "built": "merged"}
