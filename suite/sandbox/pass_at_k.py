"""pass@k for the code benchmarks, executed by suite/sandbox/sample.py, and the switch that makes lm-eval's code tasks use it.

lm-eval 0.4.13's mbpp, humaneval and humaneval_infilling `utils.py` call `evaluate.load("code_eval")` at import.
That fetches HF's metric script from the hub (no network at run time here) and would then `exec` samples inside
the evaluating process. evaluate resolves a name to a local script first when `./code_eval/code_eval.py` exists in
the working directory, so `offline_code_eval()` builds the tasks from a temp dir that holds
suite/sandbox/code_eval.py under that name. The built-in task YAMLs, prompts, filters and metric wiring stay
lm-eval's (and so do derived YAMLs that `include:` them); only where the samples run changes.

How the evaluation code uses it:

    require_code_execution(allow_code_execution, "mbpp")    # CodeExecutionError (one line, exit 2) without the flag
    with offline_code_eval():                                # build every task of the job inside this block
        task_dict = lm_eval.tasks.get_task_dict(tasks, task_manager)
    lm_eval.evaluator.evaluate(lm, task_dict, ...)           # scoring later calls our metric; no chdir needed then
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from growth.foundation.errors import BackendError, GrowbenchError
from suite.sandbox.sample import SandboxLimits, SandboxResult, layers, report_layers, run_sample

METRIC_SCRIPT = Path(__file__).with_name("code_eval.py")
# The lm-eval 0.4.13 task modules that call evaluate.load("code_eval") at import (module names as lm-eval gives
# them in lm_eval/tasks/_yaml_loader.py).
CODE_EVAL_MODULES = (
    "lm_eval.tasks.mbpp.utils",
    "lm_eval.tasks.humaneval.utils",
    "lm_eval.tasks.humaneval_infilling.utils",
)


class CodeExecutionError(GrowbenchError):
    """A code benchmark was requested without --allow-code-execution."""


def require_code_execution(allowed: bool, benchmark: str) -> dict:
    """Refuse a benchmark that executes generated code unless the user opted in and the sandbox holds here.

    Returns the sandbox's layers (printed once at the start of a run), to be stored with the run's config.
    """
    if not allowed:
        raise CodeExecutionError(
            f"benchmark {benchmark!r} executes model-generated code; pass --allow-code-execution to run it "
            "(each sample runs in a confined process, see suite/sandbox/sample.py)"
        )
    return report_layers()


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021), as HF code_eval computes it."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def run_programs(
    programs: Sequence[str], limits: SandboxLimits | None = None, workers: int | None = None,
    tests: Sequence[str] | None = None,
) -> list[SandboxResult]:
    """Each program in its own sandbox, followed there by its `tests` (if given), `workers` at a time (threads only
    wait on child processes)."""
    if not programs:
        return []
    tests = tests or [""] * len(programs)
    workers = workers or min(len(programs), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda pair: run_sample(pair[0], limits, pair[1]), zip(programs, tests)))


def pass_at_k(
    references: Sequence[str],
    predictions: Sequence[Sequence[str]],
    k: Sequence[int] | int = (1,),
    *,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
) -> tuple[dict[str, float], list[list[SandboxResult]]]:
    """pass@k over tasks: `predictions[i]` are candidate programs for the test code `references[i]`.

    HF code_eval runs the one program `candidate + "\\n" + test`; here the candidate runs first and the test after it,
    in the same globals and process, so the tests reach the process only once the candidate's own code has run.
    Returns ({"pass@1": mean over tasks, ...}, per-task per-candidate results) - the shape HF code_eval returns, which
    lm-eval's task utils index with [0]. A k larger than some task's candidate count is left out, as HF does.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} prediction lists")
    ks = [k] if isinstance(k, int) else list(k)
    pairs = [(candidate, test) for test, candidates in zip(references, predictions) for candidate in candidates]
    flat = iter(run_programs([program for program, _ in pairs], limits, workers, [test for _, test in pairs]))
    results = [[next(flat) for _ in candidates] for candidates in predictions]
    if not results:
        return {}, results
    scores = {
        f"pass@{kk}": sum(estimate_pass_at_k(len(r), sum(x.passed for x in r), kk) for r in results)
        / len(results)
        for kk in ks
        if all(len(r) >= kk for r in results)
    }
    return scores, results


@contextlib.contextmanager
def offline_code_eval() -> Iterator[None]:
    """Build lm-eval tasks inside this block so their `evaluate.load("code_eval")` gets the sandboxed metric.

    The working directory changes for the block (process-wide: pass absolute paths, build from one thread).
    Copies of those task modules imported earlier are dropped first, so a hub code_eval loaded before cannot
    survive; on exit every loaded one is checked to hold growbench's metric.
    """
    layers()
    with tempfile.TemporaryDirectory(prefix="growbench-code-eval-") as tmp:
        script_dir = Path(tmp, "code_eval")
        script_dir.mkdir()
        shutil.copyfile(METRIC_SCRIPT, script_dir / "code_eval.py")
        for name in CODE_EVAL_MODULES:
            sys.modules.pop(name, None)
        previous = os.getcwd()
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(previous)
    _check_loaded_metrics()


def _check_loaded_metrics() -> None:
    import evaluate

    for name in CODE_EVAL_MODULES:
        module = sys.modules.get(name)
        if module is None:
            continue
        metrics = [value for value in vars(module).values() if isinstance(value, evaluate.EvaluationModule)]
        if not metrics or not all(getattr(metric, "growbench_sandbox", False) for metric in metrics):
            raise BackendError(f"{name} did not load growbench's sandboxed code_eval; refusing to score it")
