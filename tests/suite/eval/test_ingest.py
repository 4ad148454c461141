"""`growbench ingest` on real lm-eval CLI output (the tiny model on the shared benchmark data): scores, samples and
task configs kept, differing settings under their own hash and flagged, malformed files refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from growth.foundation.errors import DataError
from results.leaderboard import build_leaderboard
from suite.eval.benchmarks import load_suite
from suite.eval.ingest import ingest
from suite.store import Store

LM_EVAL = str(Path(sys.executable).parent / "lm_eval")


def lm_eval_run(model: Path, tasks: str, shots: int, limit: int, mirror: Path, out: Path) -> Path:
    """`lm_eval run` on tasks derived onto the local mirror (as growbench derives them); returns results_*.json."""
    from suite.eval.tasks import TaskSource

    suite = load_suite()
    with TaskSource([suite.get(t) for t in tasks.split(",")], mirror) as source:
        proc = subprocess.run([LM_EVAL, "run", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                               "--tasks", tasks, "--include_path", str(source.work_dir), "--num_fewshot", str(shots),
                               "--limit", str(limit), "--batch_size", "4", "--device", "cpu", "--log_samples",
                               "--output_path", str(out)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    return results


@pytest.fixture(scope="module")
def zero_shot(tiny_model: Path, benchmark_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lm_eval_run(tiny_model, "arc_challenge,piqa", 0, 3, benchmark_mirror, tmp_path_factory.mktemp("zero"))


@pytest.fixture(scope="module")
def five_shot(tiny_model: Path, benchmark_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lm_eval_run(tiny_model, "piqa", 5, 3, benchmark_mirror, tmp_path_factory.mktemp("five"))


@pytest.mark.slow
def test_ingested_lm_eval_results_match_the_file_and_deviations_are_flagged(zero_shot: Path, five_shot: Path,
                                                                           tiny_model: Path, store: Store,
                                                                           cli) -> None:
    data = json.loads(zero_shot.read_text())
    assert cli("ingest", str(zero_shot), "--model", str(tiny_model), "--db", str(store.path)) == 0
    runs = store.query("SELECT * FROM eval_runs ORDER BY benchmark").set_index("benchmark")
    assert list(runs.index) == ["arc_challenge", "piqa"] and (runs.status == "finished").all()
    assert (runs.lm_eval_version == data["lm_eval_version"]).all() and (runs.limit_n == 3).all()
    assert pd.isna(runs.loc["arc_challenge", "deviation"])  # the suite's arc_challenge is 0-shot too
    assert runs.loc["piqa", "deviation"] == "0-shot (suite: 5-shot)"
    config = json.loads(runs.loc["piqa", "config"])
    assert config["imported"]["configs"]["piqa"] == data["configs"]["piqa"] and config["lm_eval"] == "0.4.13"
    scores = store.query("SELECT r.benchmark, s.task, s.metric, s.filter, s.value, s.stderr, s.is_primary "
                         "FROM scores s JOIN eval_runs r USING (run_id)")
    for row in scores.itertuples():
        assert row.task == row.benchmark
        assert row.value == data["results"][row.task][f"{row.metric},{row.filter}"]
        assert row.stderr == data["results"][row.task][f"{row.metric}_stderr,{row.filter}"]
    assert scores[scores.is_primary].metric.tolist() == ["acc_norm", "acc_norm"]
    samples = store.query("SELECT task, doc_id, data FROM samples ORDER BY task, doc_id")
    assert samples[["task", "doc_id"]].values.tolist() == [[t, i] for t in ("arc_challenge", "piqa") for i in range(3)]
    first = json.loads((zero_shot.parent / zero_shot.name.replace("results_", "samples_piqa_")
                        .replace(".json", ".jsonl")).read_text().splitlines()[0])
    assert json.loads(samples.data.iloc[3])["resps"] == first["resps"]
    per_document = store.query("SELECT task, metric, count(*) AS n FROM sample_scores GROUP BY ALL ORDER BY ALL")
    assert per_document.values.tolist() == [[t, m, 3] for t in ("arc_challenge", "piqa") for m in ("acc", "acc_norm")]

    assert all(run_id is None for _, _, run_id, _ in ingest([zero_shot], str(tiny_model), store=store).imported)
    report = ingest([five_shot], str(tiny_model), store=store)
    (piqa,) = report.imported
    assert piqa[1] == "piqa" and piqa[2] is not None and piqa[3] is None  # 5-shot: as the suite, a hash of its own
    hashes = store.query("SELECT config_hash FROM eval_runs WHERE benchmark = 'piqa'").config_hash
    assert hashes.nunique() == 2
    board = build_leaderboard(store, models=[report.model_id], suite="openseek-mid-v1")
    assert not any("differ from the suite" in n for n in board.notes)  # the counted piqa run (same limit, newer) is the 5-shot one
    ingest([zero_shot], "someone/else-model", store=store)  # a model known by name only
    board = build_leaderboard(store, models=["someone/else-model"], suite="openseek-mid-v1")
    assert any("piqa is imported lm-eval output whose settings differ" in n for n in board.notes), board.notes


@pytest.mark.slow
def test_a_metric_the_suite_reads_but_the_file_lacks_is_a_flagged_fallback(zero_shot: Path, tmp_path: Path,
                                                                          store: Store) -> None:
    data = json.loads(zero_shot.read_text())
    for key in ("acc_norm,none", "acc_norm_stderr,none"):
        del data["results"]["arc_challenge"][key]  # as a task config listing only acc would report
    edited = tmp_path / zero_shot.name
    edited.write_text(json.dumps(data))
    report = ingest([edited], "m", store=store)
    deviations = dict((b, d) for _, b, _, d in report.imported)
    assert deviations["arc_challenge"] == "arc_challenge reports no acc_norm,none; used acc,none"
    primary = store.query("SELECT s.metric, s.value FROM scores s JOIN eval_runs r USING (run_id) "
                          "WHERE r.benchmark = 'arc_challenge' AND s.is_primary")
    assert primary.values.tolist() == [["acc", data["results"]["arc_challenge"]["acc,none"]]]


def test_malformed_results_files_are_one_line_errors_and_change_nothing(tmp_path: Path, tiny_model: Path,
                                                                        cli, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "main.duckdb"
    Store(db).register_model(tiny_model)
    before = db.read_bytes()
    cases = {"broken.json": ('{"results": {"piqa": ', "invalid JSON"),
             "list.json": ("[1, 2]", "the top level is not a mapping"),
             "nokeys.json": ('{"results": {}}', "no 'configs' mapping"),
             "foreign.json": ('{"results": {"my_task": {"acc,none": 0.5}}, "configs": {}, "n-shot": {}}',
                              "none of its tasks (my_task) makes up a benchmark of suite openseek-mid-v1")}
    piqa = '{"results": {"piqa": {"acc,none": 0.5, "acc_norm,none": 0.5}}, "configs": {}, "n-shot": {"piqa": 5}, '
    cases.update({"versions.json": (piqa + '"versions": [1]}', "'versions' is not a mapping"),
                  "groups.json": (piqa + '"group_subtasks": {"piqa": "piqa"}}',
                                  "group_subtasks['piqa'] is not a list of task names"),
                  "cycle.json": (piqa + '"group_subtasks": {"piqa": ["piqa"]}}',
                                 "group_subtasks has a cycle through 'piqa'"),
                  "date.json": (piqa + '"date": 1e300}', "'date' 1e+300 is not a Unix timestamp")})
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataError, match=re.escape(message)):
            ingest([path], str(tiny_model), store=Store(db))
        capsys.readouterr()
        assert cli("ingest", str(path), "--model", str(tiny_model), "--db", str(db)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    samples = tmp_path / "results_x.json"
    samples.write_text('{"results": {"piqa": {"acc,none": 0.5, "acc_norm,none": 0.5}}, "configs": {}, '
                       '"n-shot": {"piqa": 5}, "n-samples": {"piqa": {"effective": 2}}}')
    (tmp_path / "samples_piqa_x.jsonl").write_text('{"doc_id": 0}\n{"doc_id": \n')
    with pytest.raises(DataError, match="samples_piqa_x.jsonl line 2 is not a JSON record"):
        ingest([tmp_path / "results_x.json"], str(tiny_model), store=Store(db))
    (tmp_path / "samples_piqa_x.jsonl").unlink()
    with pytest.raises(DataError, match="model ./no/such/checkpoint does not exist"):
        ingest([tmp_path / "results_x.json"], "./no/such/checkpoint", store=Store(db))
    assert db.read_bytes() == before
