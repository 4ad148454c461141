"""lm-eval's own mbpp and humaneval tasks build offline and score through the sandboxed code_eval.

The tasks come from derived YAMLs that include the built-in ones and read the local mirror, as the evaluation code
writes them; lm-eval's prompts, filters and metric functions run unchanged, only `code_eval` is ours.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from suite.sandbox.pass_at_k import CODE_EVAL_MODULES, offline_code_eval


def _derived_yaml(out: Path, task: str, data_file: Path) -> None:
    import lm_eval

    builtin = Path(lm_eval.__file__).parent / "tasks" / task / f"{task}.yaml"
    out.joinpath(f"{task}.yaml").write_text(
        f"include: {builtin}\ntask: {task}\ntag: null\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data_file}\n"
    )


def test_lm_eval_code_tasks_build_offline_and_score_in_the_sandbox(
    benchmark_mirror: Path, tmp_path: Path
) -> None:
    from lm_eval.tasks import TaskManager, get_task_dict

    _derived_yaml(tmp_path, "mbpp", benchmark_mirror / "mbpp/full/test.jsonl")
    _derived_yaml(tmp_path, "humaneval", benchmark_mirror / "humaneval/default/test.jsonl")
    cwd = os.getcwd()
    with offline_code_eval():
        # Only the derived YAMLs are indexed (they include the built-ins by path): fast, and no hub task to fall back to.
        tasks = get_task_dict(
            ["mbpp", "humaneval"], TaskManager(include_path=str(tmp_path), include_defaults=False)
        )
    assert os.getcwd() == cwd
    for name in ("lm_eval.tasks.mbpp.utils", "lm_eval.tasks.humaneval.utils"):
        assert name in CODE_EVAL_MODULES and name in sys.modules

    mbpp, humaneval = tasks["mbpp"], tasks["humaneval"]
    assert mbpp.config.dataset_path == humaneval.config.dataset_path == "json"
    assert (len(mbpp.eval_docs), len(humaneval.eval_docs)) == (500, 164)

    doc = mbpp.eval_docs[0]
    assert mbpp.process_results(doc, [doc["code"]]) == {"pass_at_1": 1.0}
    assert mbpp.process_results(doc, ["def nothing():\n    return None"]) == {"pass_at_1": 0.0}
    doc = humaneval.eval_docs[0]
    # humaneval's filter has already prepended the prompt when process_results sees the response.
    assert humaneval.process_results(doc, [[doc["prompt"] + doc["canonical_solution"]]]) == {"pass@1": 1.0}
    assert humaneval.process_results(doc, [[doc["prompt"] + "    while True:\n        pass\n"]]) == {
        "pass@1": 0.0
    }
