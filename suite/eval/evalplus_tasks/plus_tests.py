"""EvalPlus's extended tests for the evalplus_humaneval / evalplus_mbpp tasks: verified present, run in the sandbox.

EvalPlus publishes HumanEval+ and MBPP+ on the hub in the original datasets' shape, with its extended tests in the
`test` field: the base inputs plus EvalPlus's generated ones and the ground truth's outputs, checked in a loop
(`inputs = [...]`, `results = [...]`, `assertion(candidate(*inp), exp, atol)`). lm-eval 0.4.13's mbpp_plus never
reads that field. Here `process_docs` requires it in every document and raises `DataUnavailable` ("unavailable:
plus tests not in the data") otherwise, so a mirror holding HumanEval's or MBPP's base data can never be scored
under the plus name. The tasks are lm-eval tasks like any other (prompt, filter and metric wiring are lm-eval's);
the metric runs each program through suite/sandbox/pass_at_k.py's `pass_at_k`, one sandboxed process per sample.

EvalPlus's tests compare floats with `numpy.testing.assert_allclose`, but samples see the standard library only
(suite/sandbox/sample.py). Each test program therefore starts with `NUMPY_STAND_IN`, which registers a `numpy`
module holding exactly what the tests use: `np.testing.assert_allclose` with numpy's rule |actual - desired| <=
atol + rtol |desired| (rtol 1e-7, elementwise over equal-length sequences, NaN equal to NaN) and an `ndarray` type
nothing is an instance of. A model-written solution that itself imports numpy gets the stand-in and fails.
"""

from __future__ import annotations

import re
from typing import Any

from suite.eval.tasks import DataUnavailable
from suite.sandbox.pass_at_k import pass_at_k
from suite.sandbox.sample import SandboxLimits

PLUS_TIMEOUT_S = 20.0  # EvalPlus/bigcode's suggested budget: a plus test runs up to ~1,000 inputs
_PLUS_LOOP = re.compile(r"^\s*inputs = \[", re.MULTILINE)

NUMPY_STAND_IN = '''\
import math as _gb_math, sys as _gb_sys, types as _gb_types


def _gb_close(actual, desired, rtol, atol):
    if isinstance(desired, (list, tuple)):
        return (isinstance(actual, (list, tuple)) and len(actual) == len(desired)
                and all(_gb_close(a, d, rtol, atol) for a, d in zip(actual, desired)))
    try:
        a, d = complex(actual), complex(desired)
    except (TypeError, ValueError):
        return actual == desired
    if _gb_math.isnan(abs(a)) or _gb_math.isnan(abs(d)):
        return _gb_math.isnan(abs(a)) and _gb_math.isnan(abs(d))
    return abs(a - d) <= atol + rtol * abs(d)


def _gb_assert_allclose(actual, desired, rtol=1e-07, atol=0, **_):
    if not _gb_close(actual, desired, rtol, atol):
        raise AssertionError(f"not close: {actual!r} vs {desired!r} (rtol={rtol}, atol={atol})")


_gb_np = _gb_types.ModuleType("numpy")
_gb_np.ndarray = type("ndarray", (), {})
_gb_np.float64, _gb_np.float32 = float, float
_gb_np.testing = _gb_types.SimpleNamespace(assert_allclose=_gb_assert_allclose)
_gb_sys.modules["numpy"] = _gb_np
'''


def carries_plus_tests(doc: dict[str, Any]) -> bool:
    """Whether a document's `test` field holds EvalPlus's input/output loop (base HumanEval/MBPP data does not)."""
    test = doc.get("test")
    return isinstance(test, str) and bool(_PLUS_LOOP.search(test))


def _require_plus_tests(dataset: Any, name: str) -> None:
    missing = [i for i, doc in enumerate(dataset) if not carries_plus_tests(doc)]
    if missing:
        raise DataUnavailable(f"unavailable: plus tests not in the data ({len(missing)} of {len(dataset)} "
                              f"{name} documents have no EvalPlus `test` loop, e.g. document {missing[0]}; "
                              "base tests are never scored under the plus name)")


def humaneval_docs(dataset: Any) -> Any:
    _require_plus_tests(dataset, "HumanEval+")
    return dataset.map(lambda doc: {"plus_test": f"{NUMPY_STAND_IN}\n{doc['test']}\ncheck({doc['entry_point']})"})


def mbpp_docs(dataset: Any) -> Any:
    _require_plus_tests(dataset, "MBPP+")
    return dataset.map(lambda doc: {"plus_test": "\n".join([NUMPY_STAND_IN, *(doc.get("test_imports") or []),
                                                            doc["test"]])})


def humaneval_programs(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """The program HumanEval runs: the prompt (signature and docstring) followed by the completion."""
    return [[doc["prompt"] + r for r in resp] for resp, doc in zip(resps, docs)]


def pass_at_1(references: list[str], predictions: list[list[str]] | list[str]) -> float:
    """1.0 when the (first) candidate program passes the plus test, else 0.0; lm-eval averages it."""
    candidates = [[p] if isinstance(p, str) else list(p)[:1] for p in predictions]
    scores, _ = pass_at_k(references, candidates, [1], limits=SandboxLimits(timeout_s=PLUS_TIMEOUT_S))
    return scores["pass@1"]
