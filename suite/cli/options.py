"""Options that several commands share, declared once with their help text (and how a shared value is read);
commands take them as defaults.

The few flags a command has are for what changes between runs (paths, the suite, the database); experiment knobs
belong in YAML (suites, train configs, pipelines).
"""

from __future__ import annotations

import typer

DB = typer.Option(None, "--db", help="DuckDB results file (default $GROWBENCH_DB or runs/growbench.duckdb).")
DATA_DIR = typer.Option(None, "--data-dir", help="Local benchmark mirror <dataset>/<config>/<split>.jsonl "
                        "(default $GROWBENCH_DATA_DIR; none: the Hugging Face hub).")
SUITE = typer.Option("openseek-mid-v1", "--suite", help="Suite name (suite/eval/suites/) or a suite YAML file.")
BENCHMARKS = typer.Option(None, "--benchmarks", "-b", help="Benchmark keys (repeat or comma-separate); default: "
                          "all of the suite.")
LIMIT = typer.Option(None, "--limit", help="Documents per lm-eval task (for testing; recorded and hashed).")
BACKEND = typer.Option(None, "--backend", help="Evaluation backend: vllm or hf (default: vllm when importable).")
CODE = typer.Option(False, "--allow-code-execution", help="Run model-written code (MBPP, EvalPlus) in the sandbox.")
PICK = typer.Option("latest", "--pick", help="Which finished run counts per model and benchmark: latest (the most "
                    "complete, then the newest) or best.")
FORCE = typer.Option(False, "--force", help="Replace the output if it exists.")


def benchmark_keys(benchmarks: list[str] | None) -> list[str]:
    """The keys given to BENCHMARKS, repeated or comma-separated, in order (empty: none given)."""
    return [k.strip() for item in benchmarks or [] for k in item.split(",") if k.strip()]
