"""A researcher's first commands after a pipeline: reading commands take the suite the store holds (and say which
to choose when it holds several), a training run is named by its id or its folder everywhere, and merge says when
it normalised the weights it was given."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_store import add_model, add_run, add_sampled_run

from suite.store import Store

STEPS = (100, 200, 300)
BENCHMARKS = ("tiny_arith_gen", "tiny_arith_mc", "tiny_code", "tiny_cloze")


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """run-one/checkpoints/step-* of training run r1 and a seed, scored document by document in tiny-builtin only."""
    root = tmp_path_factory.mktemp("first-hour")
    store = Store(root / "results.duckdb")
    seed = add_model(store, tiny_model, root, "s0")
    ids = [add_model(store, tiny_model, root, f"run-one/checkpoints/step-{step:06d}",
                     training={"run_id": "r1", "step": step, "tokens": step * 1000}) for step in STEPS]
    for i, model_id in enumerate([seed, *ids]):
        for j, key in enumerate(BENCHMARKS):
            add_sampled_run(store, model_id, key, [[float((d + i + j) % 3 == 0) for d in range(30)]])
    return root


def run(cli, capsys: pytest.CaptureFixture, home: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli(*args, "--db", str(home / "results.duckdb"))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_reading_commands_take_the_suite_the_store_holds(home, cli, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(home)
    code, out, err = run(cli, capsys, home, "leaderboard")
    assert code == 0 and "Tiny Cloze" in out, err
    code, out, err = run(cli, capsys, home, "compare", "s0", "r1@300")
    assert code == 0 and "in tiny-builtin" in out, err
    code, out, err = run(cli, capsys, home, "regress", "--model", "r1@300", "--against", "model:s0")
    assert code in (0, 1) and "tolerance" in out, err
    code, out, err = run(cli, capsys, home, "plot", "compare", "r1@300", "--models", "s0", "--out",
                         str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").exists(), err


@pytest.mark.parametrize("given", ["r1", "run-one", "run-one/", "run-one/checkpoints", "{home}/run-one"])
def test_a_training_run_is_named_by_its_id_or_its_folder(given, home, cli, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(home)
    given = given.format(home=home)
    code, out, err = run(cli, capsys, home, "plot", "run", given, "--out", str(tmp_path / "run.png"))
    assert code == 0 and (tmp_path / "run.png").exists(), err
    code, out, err = run(cli, capsys, home, "report", str(tmp_path / "r.html"), "--run", given)
    assert code == 0 and "<dt>training run</dt><dd>r1</dd>" in (tmp_path / "r.html").read_text(), err
    code, out, err = run(cli, capsys, home, "select", "--run", given, "--out", str(tmp_path / "recipe.yaml"))
    assert code == 0, err
    assert "suite tiny-builtin" in out and "3 of 3 candidates" in out  # tiny-builtin-anchors.yaml: three roles


def test_an_unknown_run_names_the_runs_there_are(home, cli, capsys, tmp_path) -> None:
    code, out, err = run(cli, capsys, home, "plot", "run", "r2", "--out", str(tmp_path / "x.png"))
    assert code == 2 and err.strip().splitlines() == [
        f"error: no training run 'r2' (a run id or a run folder) in {home / 'results.duckdb'}; did you mean r1 "
        f"({home / 'run-one'})?"]


def test_a_store_with_two_suites_asks_for_one(home, cli, capsys, tmp_path) -> None:
    db = tmp_path / "two.duckdb"
    db.write_bytes((home / "results.duckdb").read_bytes())
    store = Store(db)
    s0 = store.query("SELECT model_id FROM models WHERE name = 's0'")["model_id"][0]
    add_run(store, s0, "mmlu", 0.3, suite="openseek-mid-v1")
    for args in (["leaderboard"], ["regress", "--model", "s0", "--against", "model:r1@300"],
                 ["plot", "compare", "s0", "--out", str(tmp_path / "c.png")]):
        capsys.readouterr()
        assert cli(*args, "--db", str(db)) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "are in suites tiny-builtin, openseek-mid-v1; choose one with --suite" in lines[0]
    capsys.readouterr()
    assert cli("leaderboard", "--suite", "openseek-mid-v1", "--db", str(db)) == 0
    assert cli("compare", "s0", "r1@300", "--db", str(db)) == 0  # the one suite both were evaluated in
    assert "in tiny-builtin" in capsys.readouterr().out


def test_merge_says_it_normalised_the_weights(home, cli, capsys, tmp_path) -> None:
    a, b = (home / "run-one" / "checkpoints" / f"step-{s:06d}" for s in (100, 200))
    capsys.readouterr()
    assert cli("merge", str(tmp_path / "m"), "--model", f"{a}:0.7", "--model", f"{b}:0.7", "--db",
               str(tmp_path / "m.duckdb")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "weights sum to 1.4; normalised to 0.5, 0.5 (--no-normalize to keep them)"
    assert lines[1].endswith(f"into {tmp_path / 'm'} [float32], registered as m")  # a unique name: no id needed
    assert cli("merge", str(tmp_path / "n"), "--model", f"{a}:0.25", "--model", f"{b}:0.75", "--db",
               str(tmp_path / "m.duckdb")) == 0
    assert "weights sum" not in capsys.readouterr().out
