"""The linear merge: a weighted average of the models, tensor by tensor (Wortsman et al., 2022 "model soups").

It matches mergekit's `linear`: out = sum_i w_i * t_i, divided by sum_i w_i when `normalize` is on.
Accumulation is fp32 and folds one model's chunk at a time, so memory does not grow with the number of models.
Weights must be finite, non-negative unless `allow_negative`, and sum to 1 once normalised, so a recipe typo
(0.3 + 0.25 + 0.5) fails loudly instead of silently scaling every weight of the output.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import torch

from growth.foundation.errors import ConfigError
from growth.merge.methods import MergeMethod, Param

SUM_TOLERANCE = 1e-6


class Linear(MergeMethod):
    name = "linear"
    parameters = (
        Param("normalize", default=True, doc="divide by the sum of the weights, so they need not sum to 1"),
        Param("allow_negative", default=False, doc="accept negative weights (extrapolation)"),
    )
    model_parameters = (Param("weight", required=True, doc="this model's share of the average"),)

    def resolve(self, params: Mapping[str, Any], model_params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        weights: list[float] = []
        for i, mp in enumerate(model_params):
            w = mp["weight"]
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ConfigError(f"model {i + 1}: weight {w!r} is not a finite number")
            if w < 0 and not params["allow_negative"]:
                raise ConfigError(f"model {i + 1}: weight {w} is negative; pass --allow-negative to allow it")
            weights.append(float(w))
        total = math.fsum(weights)
        if params["normalize"]:
            if abs(total) < SUM_TOLERANCE:
                raise ConfigError(f"weights sum to {total:g}; cannot normalise them")
            weights = [w / total for w in weights]
        elif abs(total - 1.0) > SUM_TOLERANCE:
            raise ConfigError(f"weights sum to {total:.6g}, not 1; fix them or set normalize: true "
                              "(--normalize)")
        return {"weights": weights, "normalize": bool(params["normalize"])}

    def combine(self, chunks: Iterable[torch.Tensor], resolved: Mapping[str, Any], out: torch.Tensor) -> None:
        for i, (w, chunk) in enumerate(zip(resolved["weights"], chunks, strict=True)):
            if i == 0:
                torch.mul(chunk, w, out=out)
            else:
                out.add_(chunk, alpha=w)


LINEAR = Linear()
