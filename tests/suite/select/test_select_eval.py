"""greedy-soup, search and --build with real merges and real lm-eval runs (hf backend, tiny models, mirror).

The candidates' full-suite scores, which only order them, are stored rows (tests/results_store.py);
every dev score and the built model's score come from real evaluations of real merges on a one-benchmark suite
(PIQA, 0-shot, --limit 2) so the module stays within a few minutes on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from results_store import add_run

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny
from results.selection import selection_lines
from suite.select.selector import SelectOptions, find_candidates, select
from suite.store import Store
from suite.store.queries import evaluated_models

pytestmark = pytest.mark.slow
SUITE = {"name": "select-test", "benchmarks": {"piqa": {
    "title": "PIQA (0-shot)", "tasks": ["piqa"], "num_fewshot": 0, "metric": "acc", "category": "commonsense"}}}
DEV = {"dev": {"benchmarks": ["piqa"], "limit": 2, "backend": "hf"}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, benchmark_mirror: Path) -> dict:
    root = tmp_path_factory.mktemp("select-eval")
    (root / "suite.yaml").write_text(yaml.safe_dump(SUITE))
    store = Store(root / "results.duckdb")
    for seed, value in ((0, 0.61), (1, 0.6)):  # evaluate() re-registers models under their folder names
        path = make_tiny(root / f"cand-{'ab'[seed]}", TinySpec(seed=seed))
        add_run(store, store.register_model(path), "piqa", value, suite="select-test")
    return {"root": root, "store": store, "mirror": benchmark_mirror,
            "candidates": find_candidates(store, models="cand-?")}


def options(env: dict, config: dict) -> SelectOptions:
    path = env["root"] / f"config-{len(list(env['root'].glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return SelectOptions(suite=str(env["root"] / "suite.yaml"), config=path, backend="hf", data_dir=env["mirror"],
                         work_dir=env["root"] / "work")


def dev_runs(store: Store) -> int:
    return int(store.query("SELECT count(*) AS n FROM eval_runs WHERE limit_n = 2")["n"].iloc[0])


def test_greedy_soup_merges_and_evaluates_then_reuses_the_cache(env: dict) -> None:
    store, (a, b) = env["store"], env["candidates"]
    recipe = select(store, env["candidates"], "greedy-soup", options(env, DEV))
    steps = recipe.selection["steps"]
    assert [s["tried"] for s in steps] == [["cand-a"], ["cand-a", "cand-b"]]
    assert not any(s["cached"] for s in steps) and dev_runs(store) == 2
    soup = store.query("SELECT * FROM models WHERE kind = 'candidate'").to_dict("records")
    assert len(soup) == 1 and sorted(json.loads(soup[0]["parents"])) == sorted([a.model_id, b.model_id])
    assert store.query("SELECT count(*) AS n FROM models WHERE kind = 'merged'")["n"].iloc[0] == 0
    with store.connect(read_only=True) as con:  # the scratch merge stays out of leaderboards unless asked for
        assert [m["name"] for m in evaluated_models(con, "select-test")] == ["cand-a", "cand-b"]
        assert soup[0]["name"] in [m["name"] for m in evaluated_models(con, "select-test", candidates=True)]
    measured = store.query("SELECT s.value FROM eval_runs r JOIN scores s USING (run_id) WHERE r.model_id = ? "
                           "AND s.is_primary AND r.limit_n = 2", [soup[0]["model_id"]])["value"].tolist()
    assert measured == [pytest.approx(steps[1]["dev_score"])]
    # 2 documents cannot show a rise beyond noise (McNemar's smallest p is then 0.5): the soup stays at cand-a,
    # and the recipe says why
    assert not steps[1]["accepted"] and "within noise" in steps[1]["decided_by"]
    assert [m.name for m in recipe.models] == ["cand-a"] and recipe.selection["noise"]["alpha"] == 0.05
    # one possible trial (2 candidates): alpha is spent on it whole; the recipe names the split its scores rest on
    assert recipe.selection["noise"]["trials"] == 1 and recipe.selection["noise"]["alpha_per_trial"] == 0.05
    assert recipe.selection["split"]["kind"] == "dev split" and recipe.selection["split"]["limit"] == 2
    lines = selection_lines(recipe)
    assert lines[0].startswith("selection: greedy-soup scored merges on the dev split of suite")
    assert "the first 2 documents of each dev benchmark" in lines[0] and "each trial at alpha 0.05 / 1" in lines[0]
    assert lines[1].split() == ["piqa", "dev", "mean"] and lines[2].split()[:2] == ["start:", "cand-a"]
    assert "not kept" in lines[3] and "within noise" in lines[3]
    assert not list((env["root"] / "work").glob("candidate-*"))
    assert [c.name for c in find_candidates(store, models="cand*")] == ["cand-a", "cand-b"]  # scratch: gone
    again = select(store, env["candidates"], "greedy-soup", options(env, DEV))
    assert all(s["cached"] for s in again.selection["steps"]) and dev_runs(store) == 2
    assert again.to_dict()["models"] == recipe.to_dict()["models"]
    assert again.selection["steps"][1]["decided_by"] == steps[1]["decided_by"]  # the cache finds the dev runs
    plain = select(store, env["candidates"], "greedy-soup", options(env, {**DEV, "noise": {"test": "none"}}))
    accepted = steps[1]["dev_score"] >= steps[0]["dev_score"]  # Wortsman et al.'s own rule, no noise check
    assert [m.name for m in plain.models] == (["cand-a", "cand-b"] if accepted else ["cand-a"])


def test_search_walks_the_simplex_with_real_candidates(env: dict) -> None:
    store = env["store"]
    before = dev_runs(store)
    config = {**DEV, "k": 2, "budget": 3, "step": 0.2}
    recipe = select(store, env["candidates"], "search", options(env, config))
    trace = recipe.selection["steps"]
    assert [list(t["weights"].values()) for t in trace] == [[0.5, 0.5], [0.6, 0.4], [0.4, 0.6]]
    assert trace[0]["cached"] and not trace[1]["cached"]  # the uniform mix is greedy-soup's 2-soup
    assert dev_runs(store) == before + 2
    # no move rises beyond noise on 2 documents: the uniform start stays; each of the 2 trials had alpha / 2
    assert recipe.selection["dev_score"] == trace[0]["dev_score"]
    assert recipe.selection["noise"]["alpha_per_trial"] == pytest.approx(0.025)
    assert trace[0]["kept"] and not any(t["kept"] for t in trace[1:]) and all(">= 0.025" in t["decided_by"]
                                                                             for t in trace[1:])
    assert selection_lines(recipe)[3].split()[:4] == ["trial", "1:", "0.6", "cand-a,"]
    assert recipe.resolved["weights"] == pytest.approx([0.5, 0.5])
    assert sum(recipe.resolved["weights"]) == pytest.approx(1.0)
    again = select(store, env["candidates"], "search", options(env, config))
    assert all(t["cached"] for t in again.selection["steps"]) and dev_runs(store) == before + 2


def test_build_merges_evaluates_and_registers(env: dict, cli) -> None:
    store, root = env["store"], env["root"]
    roles = {"roles": [{"role": "first", "metric": "piqa", "weight": 0.7},
                       {"role": "second", "metric": "piqa", "weight": 0.3}]}
    (root / "roles.yaml").write_text(yaml.safe_dump(roles))
    args = ["select", "--models", "cand-?", "--suite", str(root / "suite.yaml"), "--strategy", "anchors",
            "--config", str(root / "roles.yaml"), "--out", str(root / "recipe.yaml"), "--build", str(root / "final"),
            "--build-limit", "2", "--backend", "hf", "--data-dir", str(env["mirror"]), "--db", str(store.path)]
    assert cli(*args) == 0
    model_id = Checkpoint.open(root / "final").fingerprint()
    row = store.query("SELECT kind, parents, merge FROM models WHERE model_id = ?", [model_id]).iloc[0]
    assert row["kind"] == "merged"
    assert json.loads(row["parents"]) == [c.model_id for c in env["candidates"]]
    assert [m["weight"] for m in json.loads(row["merge"])["models"]] == [0.7, 0.3]
    runs = store.query("SELECT status FROM eval_runs WHERE model_id = ? AND suite = 'select-test'", [model_id])
    assert runs["status"].tolist() == ["finished"]
