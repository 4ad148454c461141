"""Time `growbench leaderboard` and `growbench regress` on a large synthetic results store.

The store holds 1,000 models (10 training runs x 100 checkpoints) and 10,000 evaluation runs of each of the 14
benchmarks (140,000 eval_runs rows: every model has 10 re-runs per benchmark, 2% of them failed), each finished run
with its primary score and two sub-task scores (~410,000 scores rows). The rows are generated in DuckDB itself. Each
report picks one run per model and benchmark with an aggregate query in DuckDB (results/measured.py); the target is
<= 1 s per call, store opening included. Prints one table: cold (first) and median-of-5 warm wall seconds, the warm
CPU seconds of the process (wall minus waiting, on a shared machine), and the ratio to the 1 s target.

Run from the repository root: .venv/bin/python -m bench.leaderboard [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from results.leaderboard import build_leaderboard
from results.leaderboard_format import render
from results.regress import regress
from results.reported_scores import CARD_REPORTED, load_reported
from suite.store import Store

TARGET_S = 1.0
MODELS = 1000
RUNS_PER_BENCHMARK = 10_000
SHOTS = {"mmlu": 5, "mmlu_pro": 5, "agieval_en": 0, "bbh": 3, "hellaswag": 5, "winogrande": 5, "piqa": 5,
         "openbookqa": 5, "arc_challenge": 0, "gsm8k": 4, "math": 4, "gpqa_diamond": 3, "mbpp": 0, "evalplus": 0}


def populate(store: Store) -> None:
    """Fill the store with synthetic models, runs and scores, all in SQL (seeded, so every run is the same)."""
    benchmarks = ", ".join(f"('{k}', {s})" for k, s in SHOTS.items())
    with store.connect() as con:
        con.execute("SELECT setseed(0.42)")
        con.execute(f"""
            INSERT INTO models (model_id, name, path, kind, parents, training_run, step, tokens, meta, registered_at)
            SELECT printf('%016x', i), printf('run%02d@%d', i // 100, (i % 100 + 1) * 1000), '/bench/m' || i,
                   'trained', '[]', printf('run%02d', i // 100), (i % 100 + 1) * 1000,
                   (i % 100 + 1) * 1000 * 4194304, '{{}}', now()::TIMESTAMP
            FROM range({MODELS}) t(i)""")
        con.execute(f"""
            INSERT INTO eval_runs (run_id, model_id, benchmark, suite, config_hash, config, lm_eval_version, backend,
                                   dtype, limit_n, num_fewshot, seed, started_at, finished_at, status, error)
            SELECT printf('r%05d-%s', r, b.key), printf('%016x', r % {MODELS}), b.key, 'openseek-mid-v1',
                   'h' || (r // {MODELS}), '{{}}', '0.4.13', 'vllm', 'bfloat16', NULL, b.shots, 0,
                   TIMESTAMP '2026-01-01' + to_seconds(r * 60), TIMESTAMP '2026-01-01' + to_seconds(r * 60 + 30),
                   CASE WHEN r % 50 = 7 THEN 'failed' ELSE 'finished' END, NULL
            FROM range({RUNS_PER_BENCHMARK}) t(r) CROSS JOIN (VALUES {benchmarks}) b(key, shots)""")
        con.execute("""
            INSERT INTO scores (run_id, task, metric, filter, value, stderr, n, is_primary)
            SELECT run_id, CASE WHEN k = 0 THEN benchmark ELSE benchmark || '_sub' || k END, 'acc', 'none',
                   0.3 + 0.5 * random(), 0.005 + 0.01 * random(), 1000, k = 0
            FROM eval_runs, range(3) t(k) WHERE status = 'finished'""")


def timed(fn: Callable[[], object], repeats: int = 5) -> tuple[float, float, float]:
    """(first call wall s, median wall s of the next `repeats`, median process CPU s of those, all threads).

    On a shared machine wall time includes waiting for a core; CPU time is the work this process did."""
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return cold, statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Build the store in this folder and keep it.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="growbench-bench-"))
    store = Store(folder / "bench.duckdb")
    start = time.perf_counter()
    populate(store)
    build_s = time.perf_counter() - start
    counts = store.query("SELECT (SELECT count(*) FROM models) AS models, (SELECT count(*) FROM eval_runs) AS runs, "
                         "(SELECT count(*) FROM scores) AS scores").iloc[0]
    card = load_reported(CARD_REPORTED)
    cases = {
        "leaderboard: card + 10 measured (md)": lambda: render(
            build_leaderboard(store, reported=card, models=["run03@*0000"]), "md"),
        "leaderboard: all 1,000 models (csv)": lambda: render(build_leaderboard(store), "csv"),
        "leaderboard: all 1,000 models, pick best (csv)": lambda: render(
            build_leaderboard(store, pick="best"), "csv"),
        "regress: model vs reported card": lambda: regress(store, "run07@100000", "reported:openseek-mid-v1",
                                                           allow_mismatch=True),
        "regress: model vs model": lambda: regress(store, "run07@100000", "model:run02@50000"),
    }
    print(f"growbench bench/leaderboard.py  duckdb {duckdb.__version__}  python {platform.python_version()}  "
          f"{platform.machine()}")
    print(f"store: {counts['models']:,} models, {counts['runs']:,} eval runs ({RUNS_PER_BENCHMARK:,} x "
          f"{len(SHOTS)} benchmarks), {counts['scores']:,} scores; built in {build_s:.2f} s at {store.path}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'case':<50} {'cold s':>8} {'warm s':>8} {'warm cpu s':>10} {'warm / 1 s target':>18}")
    worst = 0.0
    for name, fn in cases.items():
        cold, warm, cpu = timed(fn)
        worst = max(worst, cold, warm)
        print(f"{name:<50} {cold:>8.3f} {warm:>8.3f} {cpu:>10.3f} {warm / TARGET_S:>17.2f}x")
    print(f"slowest call {worst:.3f} s: {'within' if worst <= TARGET_S else 'OVER'} the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
