"""Builders for results tests: distinct tiny checkpoints registered in a Store, with finished runs written directly.

Leaderboard, regress and plot logic only reads the store, so these tests write its rows through the Store API
(register_model / start_run / finish_run) instead of running lm-eval; tests/results/test_results_eval.py covers the
path through a real evaluation. Each variant is a copy of the session's tiny model with a marker in config.json,
which gives it its own content fingerprint (model id), plus the lineage JSON files the real commands write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from suite.store import Store

SUITE = "openseek-mid-v1"


def variant(base: Path, root: Path, name: str, *, training: dict[str, Any] | None = None,
            merge: dict[str, Any] | None = None) -> Path:
    """A copy of `base` with its own fingerprint; `training` / `merge` become training.json / merge.json."""
    out = root / name
    shutil.copytree(base, out)
    config = json.loads((out / "config.json").read_text())
    config["growbench_test_variant"] = name
    (out / "config.json").write_text(json.dumps(config))
    if training is not None:
        (out / "training.json").write_text(json.dumps(training))
    if merge is not None:
        (out / "merge.json").write_text(json.dumps(merge))
    return out


def add_model(store: Store, base: Path, root: Path, name: str, **lineage: Any) -> str:
    return store.register_model(variant(base, root, name, **lineage), name=name if not lineage.get("training")
                                else None)


def add_run(store: Store, model_id: str, benchmark: str, value: float | None, stderr: float | None = 0.01, *,
            shots: int | None = None, limit: int | None = None, metric: str = "acc", suite: str = SUITE,
            status: str = "finished") -> str:
    """One evaluation run with its primary score (0..1 scale, as lm-eval reports it) and one non-primary score."""
    run = store.start_run(model_id, benchmark, f"hash-{shots}-{limit}", {"num_fewshot": shots}, suite=suite,
                          lm_eval_version="0.4.13", backend="hf", dtype="float32", limit=limit, num_fewshot=shots)
    if status == "failed":
        store.fail_run(run, "boom")
        return run
    if status == "finished":
        store.finish_run(run, [
            {"task": benchmark, "metric": metric, "filter": "none", "value": value, "stderr": stderr, "n": 100,
             "is_primary": True},
            {"task": f"{benchmark}_subtask", "metric": metric, "filter": "none", "value": 0.999, "stderr": 0.0,
             "n": 10, "is_primary": False}])
    return run


def binary_pair(only_a: int, only_b: int, both: int, neither: int) -> tuple[list[int], list[int]]:
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


def add_sampled_run(store: Store, model_id: str, benchmark: str, parts: list[list[float]], *, metric: str = "acc",
                    suite: str = "tiny-builtin", tasks: list[str] | None = None, filter_: str = "none",
                    filters: list[str] | None = None) -> str:
    """A finished run whose per-document values are `parts` (one list per task entry); headline = their mean."""
    tasks = tasks or [benchmark]
    filters = filters or [filter_] * len(parts)
    run = store.start_run(model_id, benchmark, "h", {}, suite=suite, limit=None, num_fewshot=3)
    rows = [{"task": tasks[i], "part": i, "doc_id": d, "metric": metric, "filter": filters[i], "value": v}
            for i, values in enumerate(parts) for d, v in enumerate(values)]
    rows.append({"task": tasks[0], "part": 0, "doc_id": 0, "metric": "other", "filter": "none", "value": 1.0})
    value = sum(sum(p) / len(p) for p in parts) / len(parts)
    store.finish_run(run, [{"task": benchmark, "metric": metric, "filter": filter_, "value": value, "stderr": 0.05,
                            "n": sum(map(len, parts)), "is_primary": True}], sample_scores=rows)
    return run

