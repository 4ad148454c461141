"""The `code_eval` metric that lm-eval's code tasks load, re-implemented on growbench's sandbox.

suite/sandbox/pass_at_k.py `offline_code_eval()` copies this file to `./code_eval/code_eval.py` of a temp working dir,
where `evaluate.load("code_eval")` finds it before the hub. Same name, inputs (`predictions`: candidate lists,
`references`: test code, `k`) and return value (`(pass_at_k dict, per-sample results)`) as HF evaluate's
code_eval, so lm-eval's task utils work unchanged; each sample runs confined by suite/sandbox/sample.py instead of
in-process, and no HF_ALLOW_CODE_EVAL is needed: growbench's --allow-code-execution gate is checked before the
tasks are built.
"""

import datasets
import evaluate

from suite.sandbox.pass_at_k import pass_at_k
from suite.sandbox.sample import SandboxLimits


class CodeEval(evaluate.Metric):
    """pass@k of generated programs against their tests, each run in its own sandboxed process."""

    growbench_sandbox = True

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Chen et al. 2021, Evaluating Large Language Models Trained on Code (pass@k estimator)",
            inputs_description="predictions: list of candidate lists; references: list of test programs; k: list",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Value("string"),
                }
            ),
        )

    def _compute(self, predictions, references, k=(1, 10, 100), num_workers=None, timeout=3.0):
        return pass_at_k(
            references, predictions, k, limits=SandboxLimits(timeout_s=timeout), workers=num_workers
        )
