"""evaluate() on the tiny model with the hf backend: store rows, skipping, failures, user errors, and the honesty
check against the lm-eval CLI on the same derived tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from growth.foundation.errors import CheckpointError, ConfigError
from suite.eval.benchmarks import load_suite
from suite.eval.evaluate import EvalOptions, Evaluator, evaluate
from suite.store import Store, StoreError

VENV_BIN = Path(sys.executable).parent


def test_eval_stores_primary_scores_skips_finished_and_reports_unavailable(tiny_model: Path, benchmark_mirror: Path,
                                                                          store: Store) -> None:
    results = evaluate(tiny_model, benchmarks=["arc_challenge", "gpqa_diamond"], limit=4, backend="hf",
                       data_dir=benchmark_mirror, store=store, log_samples=True)
    arc, gpqa = results
    assert arc.status == "finished" and arc.n == 4 and 0.0 <= arc.score <= 1.0, arc.error
    assert gpqa.status == "unavailable" and "no local data for Idavidrein/gpqa" in gpqa.error
    run = store.query("SELECT * FROM eval_runs").iloc[0].to_dict()
    assert [run[k] for k in ("benchmark", "status", "backend", "dtype", "limit_n", "num_fewshot")] == \
        ["arc_challenge", "finished", "hf", "float32", 4, 0]
    config = json.loads(run["config"])
    assert config["inputs"]["data"]["arc_challenge"]["test"] == \
        __import__("suite.eval.tasks", fromlist=["x"]).file_sha256(benchmark_mirror / "ai2_arc/ARC-Challenge/test.jsonl")
    scores = store.query("SELECT task, metric, filter, value, n, is_primary FROM scores ORDER BY metric")
    assert scores[["task", "metric", "is_primary"]].values.tolist() == \
        [["arc_challenge", "acc", False], ["arc_challenge", "acc_norm", True]]
    assert scores.value.iloc[1] == arc.score
    samples = store.query("SELECT * FROM samples")
    assert sorted(samples.doc_id.tolist()) == [0, 1, 2, 3]
    assert store.query("SELECT kind FROM models").kind.tolist() == ["seed"]

    again = evaluate(tiny_model, benchmarks=["arc_challenge"], limit=4, backend="hf", data_dir=benchmark_mirror,
                     store=store)
    assert again[0].status == "skipped" and again[0].run_id == arc.run_id and again[0].score == arc.score
    assert len(store.query("SELECT * FROM eval_runs")) == 1 and len(store.query("SELECT * FROM scores")) == 2


def test_a_failing_benchmark_is_recorded_and_the_next_one_runs(tiny_model: Path, benchmark_mirror: Path,
                                                              store: Store, tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nbenchmarks:\n"
                     "  wrong: {title: W, tasks: [arc_challenge], num_fewshot: 0, metric: no_such_metric}\n"
                     "  right: {title: R, tasks: [arc_challenge], num_fewshot: 0, metric: acc}\n")
    options = EvalOptions(suite=suite, limit=2, backend="hf", data_dir=benchmark_mirror)
    with Evaluator(options, store) as evaluator:
        wrong, right = evaluator.run(tiny_model)
        assert evaluator.engine_loads == 1
    assert wrong.status == "failed" and "no 'no_such_metric,none' for arc_challenge" in wrong.error
    assert right.status == "finished"
    runs = store.query("SELECT benchmark, status, error FROM eval_runs ORDER BY benchmark")
    assert runs.status.tolist() == ["finished", "failed"] and "no_such_metric" in runs.error.iloc[1]


def test_user_errors_are_raised_before_any_model_loads(tiny_model: Path, benchmark_mirror: Path, store: Store,
                                                       tmp_path: Path) -> None:
    from suite.sandbox.pass_at_k import CodeExecutionError

    with pytest.raises(ConfigError, match="unknown benchmark 'arc'.*Did you mean arc_challenge"):
        evaluate(tiny_model, benchmarks=["arc"], store=store, backend="hf")
    with pytest.raises(ConfigError, match="unknown suite"):
        evaluate(tiny_model, suite="nope", store=store, backend="hf")
    with pytest.raises(ConfigError, match="unknown backend 'tgi'"):
        evaluate(tiny_model, benchmarks=["arc_challenge"], store=store, backend="tgi")
    with pytest.raises(CodeExecutionError, match="--allow-code-execution"):
        evaluate(tiny_model, benchmarks=["mbpp"], store=store, backend="hf", data_dir=benchmark_mirror)
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(tmp_path / "missing", benchmarks=["arc_challenge"], store=store, backend="hf")
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="not a usable DuckDB database"):
        evaluate(tiny_model, benchmarks=["arc_challenge"], limit=1, store=Store(corrupt), backend="hf",
                 data_dir=benchmark_mirror)
    assert corrupt.read_bytes() == b"not a database" * 100


def test_cli_errors_are_one_line_exit_2(tiny_model: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"junk" * 10)
    cases = [(["eval", str(tiny_model), "-b", "nope"], "unknown benchmark 'nope'"),
             (["eval", str(tmp_path / "none"), "-b", "arc_challenge"], "does not exist"),
             (["eval", str(tiny_model), "-b", "mbpp"], "--allow-code-execution"),
             (["sweep", str(tmp_path / "none*")], "no checkpoint or folder matches"),
             (["sweep", str(tiny_model), "--shard", "2/2"], "--shard must be i/N"),
             (["eval", str(tiny_model), "-b", "arc_challenge", "--backend", "hf", "--db", str(corrupt)],
              "not a usable DuckDB database")]
    for args, message in cases:
        proc = subprocess.run([str(VENV_BIN / "growbench"), *args, "--db", str(tmp_path / "x.duckdb")]
                              if "--db" not in args else [str(VENV_BIN / "growbench"), *args],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr[-2000:])
    assert corrupt.read_bytes() == b"junk" * 10


@pytest.mark.slow
def test_stored_scores_equal_what_the_lm_eval_cli_prints(tiny_model: Path, benchmark_mirror: Path, tmp_path: Path) -> None:
    """Honesty: `growbench eval` and `lm_eval --model hf` on the same derived tasks give the same numbers."""
    from suite.eval.tasks import TaskSource

    db = tmp_path / "h.duckdb"
    limits = {"arc_challenge": 6, "gsm8k": 2}
    suite = load_suite()
    with TaskSource([suite.get(k) for k in limits], benchmark_mirror) as source:
        for key, limit in limits.items():
            b = suite.get(key)
            proc = subprocess.run([str(VENV_BIN / "growbench"), "eval", str(tiny_model), "-b", key, "--limit",
                                   str(limit), "--backend", "hf", "--data-dir", str(benchmark_mirror), "--db", str(db),
                                   "--batch-size", "1"], capture_output=True, text=True, timeout=1200)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out = tmp_path / f"lm_eval_{key}"
            proc = subprocess.run([str(VENV_BIN / "lm_eval"), "run", "--model", "hf", "--model_args",
                                   f"pretrained={tiny_model},dtype=float32", "--tasks", b.task_names[0],
                                   "--include_path", str(source.work_dir), "--num_fewshot", str(b.num_fewshot),
                                   "--limit", str(limit), "--batch_size", "1", "--device", "cpu",
                                   "--output_path", str(out)], capture_output=True, text=True, timeout=1200)
            assert proc.returncode == 0, proc.stderr[-3000:]
            (result_file,) = out.rglob("results_*.json")
            printed = json.loads(result_file.read_text())["results"][b.task_names[0]]
            assert json.loads(result_file.read_text())["configs"][b.task_names[0]]["dataset_path"] == "json"
            stored = Store(db).query("SELECT s.metric, s.filter, s.value, s.stderr FROM scores s JOIN eval_runs r "
                                     "USING (run_id) WHERE r.benchmark = ? AND s.task = ?", [key, b.task_names[0]])
            assert len(stored) == sum(1 for k in printed if "," in k and "_stderr" not in k)
            for row in stored.itertuples():
                assert row.value == pytest.approx(printed[f"{row.metric},{row.filter}"], abs=1e-12), (key, row)
