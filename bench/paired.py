"""Scale of the per-document results behind paired comparisons: store bytes, write and read time, test time.

Every evaluation run now stores its per-document metric values (suite/store/samples.py). At the card's scale that is
the 14-benchmark suite (~57,000 documents, ~2 metric rows per document: ~115,000 rows per model) for 64 models per
training run. This script writes synthetic rows of that shape for MODELS models into a fresh store, generated in
DuckDB, then measures what the features that read them cost: loading an MMLU-sized benchmark (14,042 documents) for
60 checkpoints in one query; one comparison of a pooled 0/1 benchmark (McNemar with its Tango interval: what
`compare`, the marks and the selector all compute there); the sign-flip test with its inverted interval over the
same documents split into MMLU's 57 subjects as strata (0/1 values, grouped: the mean-of-tasks case) and over 14,042
continuous values (the worst case: every document its own group), both at the one resample count RESAMPLES; an
average row over the whole card suite (57,000 documents in 14 strata); and the anchors step that tests a role's best
checkpoint against 59 others. The baseline is the z-test on two stored standard errors, what the selector did
before per-document values were stored.

Run from the repository root: .venv/bin/python -m bench.paired [--models N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from suite.eval.benchmarks import DEFAULT_SUITE, load_suite
from suite.eval.paired_runs import BenchmarkSamples
from suite.eval.significance import RESAMPLES, Stratum, compare_paired, compare_stderr, strata
from suite.store import Store

DOCS_PER_MODEL = 57_000  # the card suite's test documents, all 14 benchmarks
ROWS_PER_DOC = 2  # e.g. acc and acc_norm, or two filters of exact_match
MMLU_DOCS = 14_042
CANDIDATES = 60


def populate(store: Store, models: int) -> float:
    """Write `models` runs of per-document rows (an MMLU part of 14,042 documents, the rest as one other task)."""
    start = time.perf_counter()
    with store.connect() as con:
        con.execute("SELECT setseed(0.42)")
        con.execute(f"""
            INSERT INTO sample_scores
            SELECT printf('run%06d', m), CASE WHEN d < {MMLU_DOCS} THEN 'mmlu_sub' || (d % 57) ELSE 'other' END, 0,
                   d, CASE WHEN k = 0 THEN 'acc' ELSE 'acc_norm' END, 'none', (random() < 0.6)::INTEGER
            FROM range({models}) t(m), range({DOCS_PER_MODEL}) u(d), range({ROWS_PER_DOC}) v(k)""")
    return time.perf_counter() - start


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=CANDIDATES, help="Runs to write (default 60).")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="growbench-bench-paired-"))
    store = Store(folder / "bench.duckdb")
    write_s = populate(store, args.models)
    rows = args.models * DOCS_PER_MODEL * ROWS_PER_DOC
    size = store.path.stat().st_size
    mmlu = load_suite(DEFAULT_SUITE).get("mmlu")
    runs = [f"run{m:06d}" for m in range(min(args.models, CANDIDATES))]

    def load() -> BenchmarkSamples:
        with store.connect(read_only=True) as con:
            return BenchmarkSamples.load(con, mmlu, runs)

    samples = load()
    parts = samples.strata(runs[0], runs[1])
    a, b = parts[0].a, parts[0].b
    subjects = [Stratum(a[i::57], b[i::57]) for i in range(57)]  # MMLU as a mean of its 57 subjects
    rng = np.random.default_rng(0)
    continuous = strata([(rng.beta(2, 2, MMLU_DOCS), rng.beta(2, 2, MMLU_DOCS))])
    suite = [Stratum(a[:n], b[:n], 1 / 14) for n in np.linspace(1_000, MMLU_DOCS, 14).astype(int)]
    cases = {
        "z-test on two stored stderrs (baseline)": lambda: compare_stderr(0.61, 0.004, 0.60, 0.004),
        f"load MMLU values of {len(runs)} runs (one query)": load,
        "pair two runs on MMLU (14,042 documents)": lambda: samples.strata(runs[0], runs[1]),
        "MMLU pooled 0/1: McNemar + Tango interval": lambda: compare_paired(parts),
        "MMLU as 57 subjects: sign-flip + interval": lambda: compare_paired(subjects),
        "14,042 continuous values: sign-flip + interval": lambda: compare_paired(continuous),
        "average row: 14 benchmarks, 105,294 documents": lambda: compare_paired(suite),
        f"anchors role: best vs {len(runs) - 1} others": lambda: [
            compare_paired(samples.strata(runs[0], r)) for r in runs[1:]],
    }
    print(f"growbench bench/paired.py  duckdb {duckdb.__version__}  numpy {np.__version__}  python "
          f"{platform.python_version()}  {platform.machine()}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"sign-flip patterns: {RESAMPLES:,} random ones (compare, marks and selector alike) where exact "
          "enumeration is too large")
    print(f"store: {args.models} runs x {DOCS_PER_MODEL:,} documents x {ROWS_PER_DOC} metrics = {rows:,} rows, "
          f"written in {write_s:.1f} s; file {size / 2**20:.1f} MiB = {size / rows:.2f} bytes per row, "
          f"{size / args.models / 2**20:.2f} MiB per model")
    baseline = None
    print(f"{'case':<50} {'best of 3 s':>12} {'x baseline':>12}")
    for name, fn in cases.items():
        seconds = timed(fn)
        baseline = baseline or seconds
        print(f"{name:<50} {seconds:>12.6f} {seconds / baseline:>11,.0f}x")


if __name__ == "__main__":
    main()
