"""Derived lm-eval tasks read the local mirror, and anything else is caught (lm-eval falls back silently)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from growth.foundation.errors import DataError
from suite.eval.benchmarks import load_suite


@pytest.fixture(scope="module")
def card_tasks(benchmark_mirror: Path):
    from suite.eval.tasks import TaskSource

    with TaskSource(list(load_suite().benchmarks), benchmark_mirror) as source:
        yield source


def test_every_offline_benchmark_maps_to_mirror_files_and_the_rest_is_unavailable(card_tasks, benchmark_mirror) -> None:
    suite = load_suite()
    for b in suite.benchmarks:
        plan = card_tasks.plans[b.key]
        assert plan.available == b.offline, (b.key, plan.unavailable)
        if not b.offline:
            assert "no local data" in plan.unavailable
            continue
        assert plan.leaves, b.key
        for leaf in plan.leaves:
            assert leaf.data_files, (b.key, leaf.name)
            assert all(Path(p).is_relative_to(benchmark_mirror.resolve()) for p in leaf.data_files.values())
    counts = {k: len(card_tasks.plans[k].leaves) for k in ("mmlu", "mmlu_pro", "agieval_en", "bbh", "math")}
    assert counts == {"mmlu": 57, "mmlu_pro": 14, "agieval_en": 10, "bbh": 27, "math": 7}


@pytest.mark.parametrize("key", ["arc_challenge", "gsm8k", "agieval_en", "hellaswag"])
def test_built_tasks_read_json_from_the_mirror(card_tasks, key: str) -> None:
    built = card_tasks.build(key)
    leaves = [t for obj in built for t in (obj.get_all_tasks() if hasattr(obj, "get_all_tasks") else [obj])]
    assert {t.config.task for t in leaves} == {leaf.name for leaf in card_tasks.plans[key].leaves}
    for task in leaves:
        assert task.config.dataset_path == "json"
        assert len(task.eval_docs) > 0


def test_unavailable_benchmark_cannot_be_built(card_tasks) -> None:
    with pytest.raises(DataError, match="unavailable offline.*Idavidrein/gpqa"):
        card_tasks.build("gpqa_diamond")


def test_fallback_to_the_hub_task_is_an_error(benchmark_mirror: Path) -> None:
    """A derived YAML that lm-eval cannot load leaves the built-in hub task in place: that must not pass."""
    from lm_eval.tasks._index import TaskIndex

    from suite.eval.tasks import TaskSource

    with TaskSource([load_suite().get("arc_challenge")], benchmark_mirror) as source:
        derived = source.work_dir / "arc_challenge.yaml"
        derived.write_text(derived.read_text().replace("include:", "include: [broken\n"))
        index = source.manager().task_index
        builtin = TaskIndex.build([Path(index["arc_easy"].yaml_path).parent])["arc_challenge"]
        index["arc_challenge"] = builtin  # what lm-eval's indexer does when the derived file fails to parse
        assert TaskIndex.build([source.work_dir]) == {}
        with pytest.raises(DataError, match="did not load from the data mirror.*fell back to its hub task"):
            source.build("arc_challenge")


def test_mirror_missing_a_split_names_the_file(tmp_path: Path, benchmark_mirror: Path) -> None:
    from suite.eval.tasks import TaskSource

    arc = tmp_path / "ai2_arc" / "ARC-Challenge"
    arc.mkdir(parents=True)
    shutil.copy(benchmark_mirror / "ai2_arc" / "ARC-Challenge" / "test.jsonl", arc / "test.jsonl")
    with pytest.raises(DataError, match=f"missing split 'train'.*{arc / 'train.jsonl'}"):
        TaskSource([load_suite().get("arc_challenge")], tmp_path)
