"""Everything after training, as sub-packages (rooms): store/ (the DuckDB store), sandbox/ (model-written code, confined),
eval/ (suites, the evaluator, sweeps), select/ (merge recipes from scores), pipeline/ (the chain) and cli/."""
