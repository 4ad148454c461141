"""lm-eval's results dict -> store rows: every metric/filter of every task and group, plus the headline row.

Values are stored as lm-eval reports them (0..1). The headline (is_primary) row has task = the benchmark key:
for `aggregate: lm-eval` it is lm-eval's own number for the one task or group; for `aggregate: mean` the unweighted
mean of the listed tasks (its stderr combines theirs as for a mean of independent estimates).
"""

from __future__ import annotations

import math
from typing import Any

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import Benchmark


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _docs(task: str, results: dict[str, Any]) -> int | None:
    """Documents scored for a task, or summed over a group's leaves."""
    n_samples = results.get("n-samples", {})
    if task in n_samples:
        return int(n_samples[task]["effective"])
    children = results.get("group_subtasks", {}).get(task)
    if not children:
        return None
    counts = [_docs(child, results) for child in children]
    return sum(c for c in counts if c is not None)


def score_rows(benchmark: Benchmark, results: dict[str, Any]) -> list[dict[str, Any]]:
    by_task = results["results"]
    rows = []
    for task, metrics in by_task.items():
        n = _docs(task, results)
        for key, value in metrics.items():
            if "," not in key or "_stderr," in key or _number(value) is None:
                continue
            metric, filter_ = key.split(",", 1)
            rows.append({"task": task, "metric": metric, "filter": filter_, "value": float(value),
                         "stderr": _number(metrics.get(f"{metric}_stderr,{filter_}")), "n": n, "is_primary": False})
    parts = []
    for ref in benchmark.tasks:
        key = f"{ref.metric},{ref.filter}"
        value = _number(by_task.get(ref.name, {}).get(key))
        if value is None:
            reported = sorted(k for k in by_task.get(ref.name, {}) if "," in k and "_stderr," not in k)
            raise ConfigError(f"benchmark {benchmark.key}: lm-eval reported no {key!r} for {ref.name} "
                              f"(it reported {', '.join(reported) or 'nothing'}); fix metric/filter in the suite")
        parts.append((value, _number(by_task[ref.name].get(f"{ref.metric}_stderr,{ref.filter}")), _docs(ref.name, results)))
    if benchmark.aggregate == "lm-eval":
        value, stderr, n = parts[0]
    else:
        value = sum(p[0] for p in parts) / len(parts)
        errs = [p[1] for p in parts]
        stderr = None if None in errs else math.sqrt(sum(e * e for e in errs)) / len(parts)
        n = sum(p[2] or 0 for p in parts)
    for row in rows:  # a single task named like the benchmark: mark its row rather than repeat it
        if (row["task"], row["metric"], row["filter"]) == (benchmark.key, benchmark.metric, benchmark.filter) \
                and row["value"] == value:
            row["is_primary"] = True
            return rows
    rows.append({"task": benchmark.key, "metric": benchmark.metric, "filter": benchmark.filter, "value": value,
                 "stderr": stderr, "n": n, "is_primary": True})
    return rows


def sample_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-document outputs (prompt hash, target, raw and filtered responses, per-sample metrics)."""
    rows = []
    for task, samples in (results.get("samples") or {}).items():
        for s in samples:
            data = {"filter": s.get("filter"), "target": s.get("target"), "resps": s.get("resps"),
                    "filtered_resps": s.get("filtered_resps"), "prompt_hash": s.get("prompt_hash"),
                    "doc_hash": s.get("doc_hash"), "metrics": {m: s.get(m) for m in s.get("metrics", [])}}
            rows.append({"task": task, "doc_id": int(s["doc_id"]), "data": data})
    return rows


def _parts(benchmark: Benchmark, results: dict[str, Any]) -> dict[str, int]:
    """Leaf lm-eval task -> index of the benchmark task entry (task or group) it belongs to."""
    groups = results.get("group_subtasks", {})
    parts: dict[str, int] = {}
    if len(benchmark.tasks) == 1:  # one entry (a task or a group): every logged document belongs to it
        return {task: 0 for task in results.get("samples") or {}}

    def walk(name: str, part: int) -> None:
        parts.setdefault(name, part)
        for child in groups.get(name, []):
            walk(child, part)

    for i, ref in enumerate(benchmark.tasks):
        walk(ref.name, i)
    return parts


def sample_scores(benchmark: Benchmark, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every numeric per-document metric value lm-eval logged, with the task entry it belongs to (the compact
    rows of suite/store/samples.py); documents of tasks outside the benchmark's entries are not expected."""
    parts = _parts(benchmark, results)
    rows = []
    for task, samples in (results.get("samples") or {}).items():
        part = parts.get(task)
        if part is None:
            raise ConfigError(f"benchmark {benchmark.key}: lm-eval logged documents of {task!r}, which is not under "
                              f"any of its tasks ({', '.join(benchmark.task_names)})")
        for s in samples:
            for metric in s.get("metrics", []):
                value = s.get(metric)
                value = float(value) if isinstance(value, bool) else _number(value)
                if value is not None:
                    rows.append({"task": task, "part": part, "doc_id": int(s["doc_id"]), "metric": metric,
                                 "filter": s.get("filter") or "none", "value": value})
    return rows
