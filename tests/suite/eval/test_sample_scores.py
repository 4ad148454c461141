"""Per-document rows from lm-eval's results dict: numeric metrics only, each document under its benchmark entry."""

from __future__ import annotations

import pytest

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import load_suite
from suite.eval.scores import sample_scores


def logged(task: str, doc_id: int, filter_: str, **metrics: object) -> dict:
    return {"doc_id": doc_id, "filter": filter_, "metrics": list(metrics), **metrics}


def test_a_mean_of_groups_maps_each_leaf_to_its_entry() -> None:
    evalplus = load_suite("openseek-mid-v1").get("evalplus")  # two entries: humaneval+ and mbpp+
    results = {"group_subtasks": {"evalplus_group": ["evalplus_humaneval"]}, "samples": {
        "evalplus_humaneval": [logged("h", 0, "create_test", pass_at_1=1.0), logged("h", 1, "create_test",
                                                                                     pass_at_1=0.0)],
        "evalplus_mbpp": [logged("m", 7, "none", pass_at_1=True, note="text", pass_at_k={"pass@1": 1.0})]}}
    rows = sample_scores(evalplus, results)
    assert rows == [
        {"task": "evalplus_humaneval", "part": 0, "doc_id": 0, "metric": "pass_at_1", "filter": "create_test",
         "value": 1.0},
        {"task": "evalplus_humaneval", "part": 0, "doc_id": 1, "metric": "pass_at_1", "filter": "create_test",
         "value": 0.0},
        {"task": "evalplus_mbpp", "part": 1, "doc_id": 7, "metric": "pass_at_1", "filter": "none", "value": 1.0}]
    results["samples"]["stray"] = [logged("s", 0, "none", acc=1.0)]
    with pytest.raises(ConfigError, match="logged documents of 'stray'"):
        sample_scores(evalplus, results)


def test_a_group_benchmark_takes_every_leaf() -> None:
    mmlu = load_suite("openseek-mid-v1").get("mmlu")
    results = {"group_subtasks": {"mmlu": ["mmlu_stem"], "mmlu_stem": ["mmlu_anatomy"]}, "samples": {
        "mmlu_anatomy": [logged("a", 3, "none", acc=0.0)], "mmlu_law": [logged("l", 4, "none", acc=1.0)]}}
    assert [(r["task"], r["part"], r["value"]) for r in sample_scores(mmlu, results)] == [
        ("mmlu_anatomy", 0, 0.0), ("mmlu_law", 0, 1.0)]
