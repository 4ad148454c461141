"""What growbench adds on top of lm-eval: wall time vs the bare `lm_eval` CLI, and engine loads in a sweep.

    .venv/bin/python -m bench.eval_overhead [--data-dir ../shared/benchmarks] [--limit 20] [--repeats 2]

Part 1 runs the same tiny model on the same tasks (the suite's benchmarks, lm-eval's tasks derived onto the local
mirror) through `lm_eval run --model hf --include_path <derived tasks>` and through `growbench eval --backend hf`,
each as a fresh process (imports included), alternating, and reports the best of `--repeats` and the ratio
(target <= 1.05). Part 2 sweeps 5 checkpoints on the same benchmarks in this process and reports the engine
loads (one per checkpoint, not one per checkpoint x benchmark).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--benchmarks", default="winogrande,piqa", help="comma-separated suite keys, same shots")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--checkpoints", type=int, default=5)
    args = parser.parse_args()

    from growth.fixture import TinySpec, make_tiny
    from suite.eval.benchmarks import load_suite
    from suite.eval.evaluate import EvalOptions
    from suite.eval.sweep import sweep
    from suite.eval.tasks import TaskSource
    from suite.store import Store

    keys = args.benchmarks.split(",")
    suite = load_suite()
    benchmarks = [suite.get(k) for k in keys]
    shots = {b.num_fewshot for b in benchmarks}
    if len(shots) != 1:
        raise SystemExit("pick benchmarks with the same num_fewshot (the lm_eval CLI takes one --num_fewshot)")
    with tempfile.TemporaryDirectory(prefix="growbench-bench-") as tmp, TaskSource(benchmarks, args.data_dir) as src:
        tmp = Path(tmp)
        model = make_tiny(tmp / "tiny")
        tasks = ",".join(t for b in benchmarks for t in b.task_names)
        bare = [str(BIN / "lm_eval"), "run", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                "--tasks", tasks, "--include_path", str(src.work_dir), "--num_fewshot", str(shots.pop()),
                "--limit", str(args.limit), "--batch_size", "8", "--device", "cpu"]
        times: dict[str, list[float]] = {"lm_eval CLI": [], "growbench eval": []}
        for i in range(args.repeats):
            times["lm_eval CLI"].append(_timed(bare))
            ours = [str(BIN / "growbench"), "eval", str(model), "-b", args.benchmarks, "--limit", str(args.limit),
                    "--backend", "hf", "--batch-size", "8", "--data-dir", str(args.data_dir),
                    "--db", str(tmp / f"bench-{i}.duckdb")]
            times["growbench eval"].append(_timed(ours))
        base = min(times["lm_eval CLI"])
        print(f"\n## eval overhead: tiny Qwen3, {tasks}, limit {args.limit}, hf backend on CPU, best of {args.repeats}")
        print("| run | wall s (each) | best s | ratio vs lm_eval CLI |\n|---|---|---|---|")
        for name, values in times.items():
            print(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {min(values):.1f} | {min(values) / base:.3f} |")

        for step in range(1, args.checkpoints + 1):
            make_tiny(tmp / "run" / "checkpoints" / f"step-{step * 100:06d}", TinySpec(seed=step))
        options = EvalOptions(benchmarks=tuple(keys), limit=args.limit, backend="hf", data_dir=args.data_dir)
        start = time.perf_counter()
        report = sweep([str(tmp / "run")], options, store=Store(tmp / "sweep.duckdb"), show_progress=False)
        wall = time.perf_counter() - start
        print(f"\n## sweep: {len(report.checkpoints)} checkpoints x {len(keys)} benchmarks, limit {args.limit}")
        print("| checkpoints | jobs finished | engine loads | wall s |\n|---|---|---|---|")
        print(f"| {len(report.checkpoints)} | {report.count('finished')} | {report.engine_loads} | {wall:.1f} |")


if __name__ == "__main__":
    main()
