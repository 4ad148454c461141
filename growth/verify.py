"""--verify: run the model before and after every growth step on fixed prompts and compare logits (CPU, float32).

The prompts are fixed token ids drawn from a generator with a fixed seed, so every run and every architecture
compares the same inputs. Step i compares the model after step i with the model after step i-1 (step 1 with the
source); intermediate models are materialised in memory and loaded through transformers from a temporary folder,
and the last step's model is the written output itself, so the check covers what a user will load. Operators that
claim to preserve the function (untie, hypercloning width, identity depth) must stay within `TOLERANCE` relative
logit error; the others report how far they moved. Meant for small models: it holds one model at a time in RAM.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from growth.checkpoint import save_state_dict
from growth.plan_stream import PlanStream

TOLERANCE = 1e-5  # relative logit error allowed for a function-preserving step in float32
PROMPT_SEED = 20260101
PROMPT_SHAPE = (2, 24)


@dataclass(frozen=True)
class StepCheck:
    step: int
    op: str
    preserving: bool
    max_abs: float
    relative: float  # max |logits_after - logits_before| / max |logits_before|
    snr_db_measured: dict[str, float | None]

    @property
    def ok(self) -> bool:
        return not self.preserving or self.relative <= TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok, "tolerance": TOLERANCE}


def prompt_ids(vocab_size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(PROMPT_SEED)
    return torch.randint(0, vocab_size, PROMPT_SHAPE, generator=gen)


def logits(path: Path, ids: torch.Tensor) -> torch.Tensor:
    """Float32 logits of the checkpoint at `path` on `ids`, through transformers."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids).logits.float()
    del model
    return out


def compare(before: torch.Tensor, after: torch.Tensor) -> tuple[float, float]:
    max_abs = (after - before).abs().max().item()
    return max_abs, max_abs / max(before.abs().max().item(), 1e-30)


def verify_steps(stream: PlanStream, grown_path: Path, cast_to: str | None = None) -> list[StepCheck]:
    """One `StepCheck` per plan step; `grown_path` holds the written (maybe not yet published) output.

    With `cast_to` (the output was written in another dtype) the last step is checked in memory too, and one more
    check compares the written output with it, so a precision loss is reported as the cast's and not the step's.
    """
    plan = stream.plan
    ids = prompt_ids(int(plan.source.config["vocab_size"]))
    previous = logits(stream.source.path, ids)
    checks = []
    for i, step in enumerate(plan.steps):
        if i == len(plan.steps) - 1 and cast_to is None:
            current = logits(grown_path, ids)
        else:
            with tempfile.TemporaryDirectory(prefix="growbench-verify-") as tmp:
                model_dir = save_state_dict(Path(tmp) / "model", stream.state_dict(i), step.after.config)
                current = logits(model_dir, ids)
        max_abs, relative = compare(previous, current)
        checks.append(StepCheck(i + 1, step.config.op, step.operator.preserves_function(step.config.params),
                                max_abs, relative, dict(sorted(stream.measured[i].items()))))
        previous = current
    if cast_to is not None:
        max_abs, relative = compare(previous, logits(grown_path, ids))
        checks.append(StepCheck(len(plan.steps) + 1, f"cast to {cast_to}", False, max_abs, relative, {}))
    return checks
