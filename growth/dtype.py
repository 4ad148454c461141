"""One rule for the dtype a checkpoint's config declares: which key is read, and how a derived config is written.

HF configs name the dtype under `dtype` (transformers >= 4.56) or the older `torch_dtype`, and many carry both.
transformers loads with `dtype` when it is set and falls back to `torch_dtype`, so that is the reading here too:
growth accounting, the evaluator's `--dtype auto` (the dtype recorded with every score) and anything else that asks
"what does this checkpoint run in" call `config_dtype`. Writers (grow, training export, merge) call `with_dtype`,
which sets every key the parent config used (`dtype` when it used none), so both keys always agree and a tool that
reads either one sees the dtype the weights were written in.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch

from growth.checkpoint import parse_dtype

KEYS = ("dtype", "torch_dtype")  # transformers' precedence: dtype first
DEFAULT = "float32"
log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def dtype_name(dtype: torch.dtype | str) -> str:
    """The canonical name written into configs and the store: float32, bfloat16, float16."""
    if isinstance(dtype, str):
        dtype = parse_dtype(dtype.removeprefix("torch."))
    return str(dtype).removeprefix("torch.")


def config_dtype(config: Mapping[str, Any], default: str = DEFAULT) -> str:
    """The dtype a config declares, read as transformers reads it; `default` when it declares none.

    A config whose two keys disagree (written by a tool that updated only one) is read by `dtype`, like
    transformers, with a warning once per distinct pair.
    """
    values = {k: str(config[k]).removeprefix("torch.") for k in KEYS if config.get(k)}
    if len(set(values.values())) > 1:
        pair = (values["dtype"], values["torch_dtype"])
        if pair not in _warned:
            _warned.add(pair)
            log.warning("config declares dtype %s but torch_dtype %s; transformers loads it as %s", *pair, pair[0])
    for key in KEYS:
        if key in values:
            return values[key]
    return default


def with_dtype(config: Mapping[str, Any], dtype: torch.dtype | str) -> dict[str, Any]:
    """A copy of `config` declaring `dtype` under every key it already used (`dtype` when it used none)."""
    name = dtype_name(dtype)
    out = dict(config)
    keys = [k for k in KEYS if k in out] or ["dtype"]
    out.update({k: name for k in keys})
    return out
