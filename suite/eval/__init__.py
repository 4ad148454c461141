"""Evaluation: benchmark suites as data, lm-eval task derivation, the evaluator and its backends, sweeps."""
