"""The shipped openseek-mid-v1 suite and user suites written as YAML (no lm-eval needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import load_suite

CARD_KEYS = ["mmlu", "mmlu_pro", "agieval_en", "bbh", "hellaswag", "winogrande", "piqa", "openbookqa",
             "arc_challenge", "gsm8k", "math", "gpqa_diamond", "mbpp", "evalplus"]
CARD_SHOTS = {"mmlu": 5, "mmlu_pro": 5, "agieval_en": 0, "bbh": 3, "hellaswag": 5, "winogrande": 5, "piqa": 5,
              "openbookqa": 5, "arc_challenge": 0, "gsm8k": 4, "math": 4, "gpqa_diamond": 3, "mbpp": 0,
              "evalplus": 0}


def test_card_suite_has_the_14_benchmarks_with_the_cards_shots_and_groups() -> None:
    suite = load_suite("openseek-mid-v1")
    assert suite.keys == CARD_KEYS
    assert {b.key: b.num_fewshot for b in suite.benchmarks} == CARD_SHOTS
    assert [b.key for b in suite.benchmarks if b.in_avg_general] == CARD_KEYS[:9]
    assert {b.key for b in suite.benchmarks if b.code} == {"mbpp", "evalplus"}
    assert {b.key for b in suite.benchmarks if not b.offline} == {"gpqa_diamond", "evalplus"}
    evalplus = suite.get("evalplus")
    # growbench's own EvalPlus tasks (lm-eval's mbpp_plus checks only MBPP's base asserts), from the benchmark's folder
    assert evalplus.aggregate == "mean" and evalplus.task_names == ["evalplus_humaneval", "evalplus_mbpp"]
    assert [p.name for p in evalplus.include_paths] == ["evalplus_tasks"]
    assert suite.get("mmlu").include_paths == ()
    assert suite.get("mmlu").title == "MMLU (5-shot)"


def test_unknown_names_are_config_errors_with_suggestions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean openseek-mid-v1"):
        load_suite("openseek-mid-v2")
    with pytest.raises(ConfigError, match="Did you mean mmlu_pro"):
        load_suite().select(["mmlu-pro"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbenchmarks:\n  a: {title: A, tasks: [arc_easy], num_fewshot: 0, metric: acc, shots: 3}\n")
    with pytest.raises(ConfigError, match="unknown key.*shots"):
        load_suite(bad)
    bad.write_text("name: x\nbenchmarks:\n  a: {title: A, tasks: [arc_easy, piqa], num_fewshot: 0, metric: acc}\n")
    with pytest.raises(ConfigError, match="use 'mean'"):
        load_suite(bad)


def test_user_suite_extends_the_card_and_adds_its_own_task_folder(tmp_path: Path) -> None:
    tasks = tmp_path / "my_tasks"
    tasks.mkdir()
    (tasks / "my_arc.yaml").write_text("include: arc_easy.yaml\ntask: my_arc\n")
    user = tmp_path / "mine.yaml"
    user.write_text("name: mine\nextends: openseek-mid-v1\ninclude_paths: [my_tasks]\nbenchmarks:\n"
                    "  my_arc: {title: My ARC (0-shot), tasks: [my_arc], num_fewshot: 0, metric: acc,"
                    " category: reasoning}\n")
    suite = load_suite(user)
    assert suite.name == "mine" and suite.keys[:14] == CARD_KEYS and suite.keys[-1] == "my_arc"
    assert suite.get("my_arc").include_paths == (tasks.resolve(),)
    assert suite.get("my_arc").spec()["version"] == 1
