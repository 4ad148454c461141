"""Execution of model-written code for the code benchmarks: the sandbox, its confined child and the pass@k metric."""
