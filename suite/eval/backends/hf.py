"""The transformers backend: lm-eval's HFLM on a local checkpoint (CPU, one GPU, or its layers over several)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError
from suite.eval.backends import Backend, EngineOptions


def load(path: Path, options: EngineOptions) -> Any:
    try:
        import torch
        from lm_eval.models.huggingface import HFLM
    except ImportError as e:
        raise BackendError(f"the hf backend needs transformers and accelerate ({e}); pip install 'lm-eval[hf]'") from None
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    batch_size = options.batch_size if options.batch_size != "auto" else (8 if device == "cpu" else "auto")
    return HFLM(pretrained=str(path), dtype=options.dtype, device=device, batch_size=batch_size,
                trust_remote_code=False, **options.settings.hf_kwargs())


def release(lm: Any) -> None:
    """Drop the model's weights (and the CUDA cache) before the next checkpoint loads."""
    import torch

    lm._model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


BACKEND = Backend("hf", load, release)
