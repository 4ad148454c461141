"""Performance benchmarks: each module prints a table and its ratios against a named baseline.

Run from the repository root as `python -m bench.NAME` (the project must be importable: the README's install does it).
"""
