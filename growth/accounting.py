"""Parameter accounting on the meta device: what transformers builds from a config, without allocating weights.

The dry run takes its source tensor table from here when it has only a config.json, and every grow (dry or real)
checks that the grown config makes transformers expect exactly the tensors the plan will write, before any weight
is read: a config rewrite that forgot a key fails here, not at load time after hours of work.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from growth.checkpoint import USER_DTYPES
from growth.dtype import config_dtype
from growth.foundation.errors import ConfigError, PlanError

TensorTable = Mapping[str, tuple[tuple[int, ...], torch.dtype]]


def meta_tensors(config: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Parameter names and shapes of the causal LM transformers builds from `config` (tied weights once)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    try:
        hf_config = AutoConfig.for_model(config["model_type"], **kwargs)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(hf_config)
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"transformers rejects the config ({str(e).splitlines()[0]})") from None
    dtype = USER_DTYPES.get(config_dtype(config), torch.float32)
    return {name: (tuple(p.shape), dtype) for name, p in model.named_parameters()}


def check_same_tensors(expected: TensorTable, planned: TensorTable, what: str) -> None:
    """Names and shapes must agree exactly; the message names the first difference."""
    for name, (shape, _) in expected.items():
        if name not in planned:
            raise PlanError(f"{what}: transformers expects {name} {list(shape)}, which the plan does not write")
        if tuple(planned[name][0]) != tuple(shape):
            raise PlanError(f"{what}: {name} is planned as {list(planned[name][0])}, transformers expects "
                            f"{list(shape)}")
    extra = [n for n in planned if n not in expected]
    if extra:
        raise PlanError(f"{what}: the plan writes {extra[0]}, which transformers would not load")
