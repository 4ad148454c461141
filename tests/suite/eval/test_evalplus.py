"""EvalPlus done right: HumanEval+ / MBPP+ run EvalPlus's extended tests in the sandbox, and data holding only the
base tests is reported unavailable, never scored under the plus name.

The plus documents below are written in EvalPlus's published shape (the `test` field: numpy `assertion` helper,
`inputs`/`results` loop), with inputs on which a solution fitted to the base asserts fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ASSERTION = '''import numpy as np

def is_floats(x) -> bool:
    # check if it is float; List[float]; Tuple[float]
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False

def assertion(out, exp, atol):
    exact_match = out == exp
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        np.testing.assert_allclose(out, exp, atol=atol)
    else:
        assert exact_match
'''

HUMANEVAL_PLUS = {
    "task_id": "HumanEval/0", "entry_point": "mean_of",
    "prompt": 'def mean_of(xs: list) -> float:\n    """The mean of a non-empty list of numbers."""\n',
    "canonical_solution": "    return sum(xs) / len(xs)\n",
    # 0.1 + 0.2 + 0.3 over 3 is 0.20000000000000004: exact match fails, the float tolerance must accept it
    "test": ASSERTION + "\n\ndef check(candidate):\n    inputs = [[[1.0, 2.0]], [[3.0]], [[0.1, 0.2, 0.3]], "
            "[[1.0, 2.0, 6.0]]]\n    results = [1.5, 3.0, 0.2, 3.0]\n"
            "    for i, (inp, exp) in enumerate(zip(inputs, results)):\n        assertion(candidate(*inp), exp, 0)\n",
}
BASE_FIT_HUMANEVAL = "    return (xs[0] + xs[-1]) / 2\n"  # right on [1, 2] and [3], wrong on [1, 2, 6]

MBPP_PLUS = {
    "task_id": 2, "prompt": "Write a function to find the largest number in a list.",
    "code": "def largest(xs):\n    return max(xs)", "source_file": "x", "test_imports": [],
    "test_list": ["assert largest([1, 2]) == 2", "assert largest([5]) == 5", "assert largest([3, 1]) == 3"],
    "test": ASSERTION + "\n\ninputs = [[[1, 2]], [[5]], [[3, 1]], [[-1, -7]], [[2.5, 1.0]]]\n"
            "results = [2, 5, 3, -1, 2.5]\nfor i, (inp, exp) in enumerate(zip(inputs, results)):\n"
            "    assertion(largest(*inp), exp, 0)\n",
}
BASE_FIT_MBPP = "def largest(xs):\n    return max(max(xs), 0)\n"  # passes the 3 base asserts, not [-1, -7]


def write_mirror(root: Path, humaneval: list[dict], mbpp: list[dict]) -> Path:
    for folder, docs in (("humanevalplus/default", humaneval), ("mbppplus/default", mbpp)):
        (root / folder).mkdir(parents=True)
        (root / folder / "test.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return root


def built_tasks(mirror: Path) -> dict:
    from suite.eval.benchmarks import load_suite
    from suite.eval.tasks import TaskSource

    benchmark = load_suite("openseek-mid-v1").get("evalplus")
    with TaskSource([benchmark], mirror) as source:
        assert source.plans["evalplus"].available
        return {t.config.task: t for t in source.build("evalplus")}


def test_plus_tests_run_in_the_sandbox_and_catch_base_fitted_code(tmp_path: Path) -> None:
    from suite.sandbox.sample import layers

    layers()  # the sandbox must be usable here (else a one-line BackendError says why)
    tasks = built_tasks(write_mirror(tmp_path, [HUMANEVAL_PLUS], [MBPP_PLUS]))
    humaneval, mbpp = tasks["evalplus_humaneval"], tasks["evalplus_mbpp"]
    doc = humaneval.eval_docs[0]
    assert "inputs = [" in humaneval.doc_to_target(doc)
    # the filter prepends the prompt, as lm-eval's humaneval does; the plus test then runs in the sandbox
    assert humaneval.process_results(doc, [[doc["prompt"] + doc["canonical_solution"]]]) == {"pass_at_1": 1.0}
    assert humaneval.process_results(doc, [[doc["prompt"] + BASE_FIT_HUMANEVAL]]) == {"pass_at_1": 0.0}
    doc = mbpp.eval_docs[0]
    assert mbpp.doc_to_text(doc).endswith("assert largest([3, 1]) == 3\n[BEGIN]\n")
    assert mbpp.process_results(doc, [doc["code"]]) == {"pass_at_1": 1.0}
    assert mbpp.process_results(doc, [BASE_FIT_MBPP]) == {"pass_at_1": 0.0}
    # the numpy stand-in's tolerance: 0.20000000000000004 passed above; a float off by more than atol fails
    doc = humaneval.eval_docs[0]
    off = doc["prompt"] + "    return sum(xs) / len(xs) + 1e-3\n"
    assert humaneval.process_results(doc, [[off]]) == {"pass_at_1": 0.0}


def test_base_tests_are_never_scored_under_the_plus_name(tmp_path: Path, benchmark_mirror: Path, tiny_model: Path,
                                                          store) -> None:
    from growth.foundation.errors import DataError
    from suite.eval.evaluate import evaluate

    base = [json.loads(line) for line in (benchmark_mirror / "humaneval/default/test.jsonl").read_text()
            .splitlines()[:3]]
    mirror = write_mirror(tmp_path / "mirror", base, [MBPP_PLUS])
    with pytest.raises(DataError, match="unavailable: plus tests not in the data"):
        built_tasks(mirror)
    [result] = evaluate(tiny_model, suite="openseek-mid-v1", benchmarks=["evalplus"], data_dir=mirror,
                        backend="hf", store=store, allow_code_execution=True, limit=1, batch_size=1)
    assert result.status == "unavailable" and result.score is None
    assert result.error.startswith("unavailable: plus tests not in the data (3 of 3 HumanEval+ documents")
    runs = store.query("SELECT status, error FROM eval_runs")
    assert runs["status"].tolist() == ["failed"] and "plus tests not in the data" in runs["error"][0]
    assert store.query("SELECT count(*) AS n FROM scores")["n"][0] == 0
    shutil.rmtree(mirror / "humanevalplus")  # and no data at all: unavailable before any engine starts
    [result] = evaluate(tiny_model, suite="openseek-mid-v1", benchmarks=["evalplus"], data_dir=mirror,
                        backend="hf", store=store, allow_code_execution=True, limit=1)
    assert result.status == "unavailable" and "no local data for evalplus/humanevalplus" in result.error
