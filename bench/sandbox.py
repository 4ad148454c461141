"""What the code sandbox costs per sample, and how much memory a sample holds, on real MBPP solutions.

    .venv/bin/python -m bench.sandbox [--data-dir ../shared/benchmarks] [--samples 100]

Runs the first `--samples` MBPP test items (canonical solution + its asserts) two ways and prints one table:
the baseline is one bare `python -I -S -B` process per sample (what any process-per-sample executor pays, with no
confinement); the sandbox is `pass_at_k` as lm-eval's code metric calls it (own PID/mount/network/IPC/UTS
namespaces, a minimal root, own uid, cgroup, Landlock, the seccomp allowlist, supervisor, the tests sent after the
solution ran, leftover checks), with 1 worker and with one per core. Reports wall ms per sample, samples per
second, the ratio to the baseline and the sample's peak memory as its cgroup counted it, and the load averages
before and after (on shared cores the load moves the numbers: compare runs at similar loads).
Memory scales as (per-sample limit, 1 GiB by default) x workers at most: the cgroup caps each sample as a whole.
Needs root (the full sandbox).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from suite.sandbox.pass_at_k import pass_at_k
from suite.sandbox.sample import SandboxLimits, layers

ROOT = Path(__file__).resolve().parents[1]


def programs(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """(solution, its asserts) of the first `count` MBPP test items."""
    with open(data_dir / "mbpp" / "full" / "test.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(line) for _, line in zip(range(count), fh)]
    return [(doc["code"] + "\n", "\n".join(doc["test_list"]) + "\n") for doc in docs]


def bare(sources: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for code, tests in sources:
        subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code + tests], check=True, capture_output=True)
    return time.perf_counter() - start


def sandboxed(sources: list[tuple[str, str]], workers: int) -> tuple[float, list[int]]:
    start = time.perf_counter()
    scores, results = pass_at_k([tests for _, tests in sources], [[code] for code, _ in sources], k=[1],
                                workers=workers)
    seconds = time.perf_counter() - start
    if scores != {"pass@1": 1.0}:
        failed = [r[0] for r in results if not r[0].passed][:3]
        raise SystemExit(f"canonical MBPP solutions did not all pass: {failed}")
    return seconds, [r[0].peak_bytes or 0 for r in results]


def _loads() -> str:
    return " / ".join(f"{load:.1f}" for load in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    sources = programs(args.data_dir, args.samples)
    active = layers()
    cores = os.cpu_count() or 1
    print(f"growbench bench/sandbox.py  python {platform.python_version()}  {platform.machine()}  "
          f"kernel {platform.release()}  {cores} cores, load averages (1/5/15 min) {_loads()} at the start")
    print(active.describe())
    base = bare(sources)
    rows = [("bare python -I -S per sample (baseline)", base, None)]
    for workers in sorted({1, cores}):
        seconds, peaks = sandboxed(sources, workers)
        rows.append((f"sandbox, {workers} worker{'s' if workers > 1 else ''}", seconds, peaks))
    print(f"{'case':<42} {'ms/sample':>10} {'samples/s':>10} {'vs baseline':>12} {'peak MiB med/max':>17}")
    for name, seconds, peaks in rows:
        memory = f"{statistics.median(peaks) / 2**20:.1f} / {max(peaks) / 2**20:.1f}" if peaks else "-"
        print(f"{name:<42} {1000 * seconds / len(sources):>10.1f} {len(sources) / seconds:>10.1f} "
              f"{seconds / base:>11.2f}x {memory:>17}")
    print(f"load averages (1/5/15 min) {_loads()} at the end")
    limit = SandboxLimits().memory_bytes
    print(f"memory bound: {limit >> 20} MiB per sample (cgroup, whole sample) x workers, e.g. {cores} workers here "
          f"-> {cores * limit >> 20} MiB; 16 per host -> {16 * limit >> 30} GiB")


if __name__ == "__main__":
    main()
