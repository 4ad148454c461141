"""Evaluation and results: benchmarks, evaluator backends, the DuckDB store, sweeps, selection and the CLI."""
