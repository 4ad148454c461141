"""The selector over stored scores: candidates from a run, the score table, anchors, the CLI and errors.

Scores are written through the Store API onto real tiny checkpoints (tests/results_store.py): anchors is
pure store reads. greedy-soup and search evaluate for real (tests/suite/select/test_select_eval.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import yaml
from results_store import add_run, variant

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import load_suite
from suite.select.selector import SelectOptions, find_candidates, score_tables, select
from suite.store import Store
from suite.store.queries import find_models

# step -> primary scores (0..1); the card's shape: each role has a distinct best checkpoint.
SCORES = {
    100: {"mbpp": 0.60, "gpqa_diamond": 0.30, "evalplus": 0.50, "bbh": 0.70},
    200: {"mbpp": 0.79, "gpqa_diamond": 0.31, "evalplus": 0.69, "bbh": 0.71},  # code anchor; best evalplus too
    300: {"mbpp": 0.70, "gpqa_diamond": 0.32, "evalplus": 0.68, "bbh": 0.72},  # code peak: next best evalplus
    400: {"mbpp": 0.65, "gpqa_diamond": 0.43, "evalplus": 0.55, "bbh": 0.73},  # math bridge: 2nd gpqa
    500: {"mbpp": 0.66, "gpqa_diamond": 0.44, "evalplus": 0.56, "bbh": 0.74},  # reasoning lead: best gpqa
    600: {"mbpp": 0.67, "gpqa_diamond": 0.35, "evalplus": 0.57, "bbh": 0.83},  # general boost
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for the module: the tests below only add rows that do not change what the others read."""
    return Store(tmp_path_factory.mktemp("select") / "results.duckdb")


@pytest.fixture(scope="module")
def run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, store: Store) -> Path:
    """A training run whose six checkpoints are registered with finished runs of the four anchor benchmarks."""
    root = tmp_path_factory.mktemp("select") / "run"
    (root / "checkpoints").mkdir(parents=True)
    for step, scores in SCORES.items():
        path = variant(tiny_model, root / "checkpoints", f"step-{step:06d}",
                       training={"run_id": "mid", "step": step, "tokens": step * 1000, "stage": 1})
        model_id = store.register_model(path)
        for bench, value in scores.items():
            add_run(store, model_id, bench, value)
    return root


def test_candidates_and_table_prefer_full_runs(run: Path, store: Store) -> None:
    candidates = find_candidates(store, run=run)
    assert [c.name for c in candidates] == [f"mid@{s}" for s in SCORES]
    add_run(store, candidates[0].model_id, "mbpp", 0.99, limit=5)  # a later --limit run must not displace it
    add_run(store, candidates[0].model_id, "mmlu", 0.5, suite="other-suite")
    table = score_tables(store, candidates, load_suite("openseek-mid-v1"))[0]
    assert sorted(table.columns) == ["bbh", "evalplus", "gpqa_diamond", "mbpp"]
    assert table.loc[candidates[0].model_id, "mbpp"] == pytest.approx(0.60)
    assert find_candidates(store, models="mid@[23]00") == candidates[1:3]


def test_anchors_fill_each_role_with_the_best_distinct_checkpoint(run: Path, store: Store) -> None:
    recipe = select(store, find_candidates(store, run=run), "anchors", SelectOptions())
    chosen = [(m.name, m.role, m.params["weight"]) for m in recipe.models]
    assert chosen == [("mid@200", "code anchor", 0.30), ("mid@500", "reasoning lead", 0.25),
                      ("mid@300", "code peak", 0.15), ("mid@400", "math bridge", 0.15),
                      ("mid@600", "general boost", 0.15)]
    assert recipe.models[2].evidence["evalplus"] == pytest.approx(0.68) and recipe.models[2].evidence["rank"] == 2
    assert recipe.resolved["weights"] == pytest.approx([0.30, 0.25, 0.15, 0.15, 0.15])
    assert recipe.selection["strategy"] == "anchors" and len(recipe.selection["candidates"]) == 6
    assert recipe.selection["scores"]["bbh"]["mid@600"] == pytest.approx(0.83)


def test_anchor_roles_are_editable(run: Path, store: Store, tmp_path: Path) -> None:
    roles = tmp_path / "roles.yaml"
    roles.write_text(yaml.safe_dump({"roles": [{"role": "general", "metric": "bbh", "weight": 2},
                                               {"role": "second general", "metric": "bbh", "weight": 1}]}))
    recipe = select(store, find_candidates(store, run=run), "anchors", SelectOptions(config=roles))
    assert [m.name for m in recipe.models] == ["mid@600", "mid@500"]
    assert recipe.resolved["weights"] == pytest.approx([2 / 3, 1 / 3])


def test_anchor_errors(run: Path, store: Store, tmp_path: Path) -> None:
    candidates = find_candidates(store, run=run)
    with pytest.raises(ConfigError, match="3 candidate checkpoints for 5 roles"):
        select(store, candidates[:3], "anchors", SelectOptions())
    roles = tmp_path / "roles.yaml"
    roles.write_text(yaml.safe_dump({"roles": [{"role": "maths", "metric": "math", "weight": 1}]}))
    with pytest.raises(ConfigError, match="role 'maths': no stored 'math' score for any candidate"):
        select(store, candidates, "anchors", SelectOptions(config=roles))
    roles.write_text(yaml.safe_dump({"roles": [{"role": "maths", "metric": "math", "weight": 1, "bonus": 2}]}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) bonus"):
        select(store, candidates, "anchors", SelectOptions(config=roles))
    with pytest.raises(ConfigError, match="unknown selection strategy 'greedy'. Did you mean greedy-soup"):
        select(store, candidates, "greedy", SelectOptions())
    with pytest.raises(ConfigError, match="no candidate checkpoints"):
        find_candidates(store, models="nothing*")
    with pytest.raises(ConfigError, match="is not a training run"):
        find_candidates(store, run=tmp_path)
    with pytest.raises(ConfigError, match="exactly one of --run RUN or --models GLOB"):
        find_candidates(store, run=run, models="mid@*")


def test_cli_writes_a_recipe_that_merge_reads(cli: Callable[..., int], run: Path, store: Store, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "recipe.yaml"
    assert cli("select", "--run", str(run), "--strategy", "anchors", "--out", str(out), "--suite", "openseek-mid-v1",
                "--db", str(store.path)) == 0  # the store holds runs of another suite too
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("selection: anchors ranked each candidate's counted run in suite openseek-mid-v1")
    assert printed[1].split() == ["mbpp", "gpqa_diamond", "evalplus", "bbh"]  # the roles' metrics, in role order
    recipe = yaml.safe_load(out.read_text())
    assert [m["weight"] for m in recipe["models"]] == [0.30, 0.25, 0.15, 0.15, 0.15]
    assert recipe["models"][0]["evidence"]["mbpp"] == pytest.approx(0.79)
    assert cli("merge", str(tmp_path / "merged"), "--recipe", str(out), "--db", str(store.path)) == 0
    row = find_models(store, str(tmp_path / "merged"))[0]
    assert row["kind"] == "merged"
    assert sorted(yaml.safe_load(row["parents"])) == sorted(m["evidence"]["model_id"] for m in recipe["models"])


def test_cli_errors_are_one_line_and_write_nothing(cli: Callable[..., int], run: Path, store: Store, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "recipe.yaml"
    roles = tmp_path / "roles.yaml"
    roles.write_text(yaml.safe_dump({"roles": [{"role": "maths", "metric": "math", "weight": 1}]}))
    capsys.readouterr()
    assert cli("select", "--run", str(run), "--config", str(roles), "--out", str(out), "--suite", "openseek-mid-v1",
                "--db", str(store.path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: role 'maths'") and "\n" not in err
    assert cli("select", "--models", "mid@[12]00", "--out", str(out), "--suite", "openseek-mid-v1",
               "--db", str(store.path)) == 2
    assert "2 candidate checkpoints for 5 roles" in capsys.readouterr().err
    assert not out.exists()


def test_search_moves_stay_on_the_simplex() -> None:
    from suite.select.strategies.search import move

    assert move([0.5, 0.5], 0, 0.2) == [0.6, 0.4]
    assert move([0.5, 0.5], 0, -0.2) == [0.4, 0.6]
    assert move([0.9, 0.1], 1, -0.5) == [1.0, 0.0]  # clipped at 0, renormalised
    third = move([1 / 3] * 3, 2, 0.1)
    assert sum(third) == pytest.approx(1.0, abs=1e-12) and third[2] == max(third)


@pytest.mark.parametrize("strategy, config, match", [
    ("search", {"k": 10}, "search k=10 but only 6 candidate checkpoints are scored"),
    ("search", {"budget": 0}, "search budget must be a positive integer"),
    ("search", {"step": 0.1, "min_step": 0.2}, "0 < min_step <= step < 1"),
    ("search", {"dev": {"limit": 0}}, "dev.limit must be a positive integer"),
    ("greedy-soup", {"dev": {"benchmark": ["piqa"]}}, r"unknown key\(s\) benchmark"),
    ("greedy-soup", {"max_models": 0}, "max_models must be a positive integer"),
])
def test_strategy_config_errors_come_before_any_evaluation(run: Path, store: Store, tmp_path: Path, strategy: str,
                                                           config: dict, match: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=match):
        select(store, find_candidates(store, run=run), strategy, SelectOptions(config=path))
