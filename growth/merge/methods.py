"""Merge methods as small plug-ins that declare their parameters as data, in one explicit registry.

A method says which global parameters it takes (`normalize`) and which each model takes (`weight`), each with
required/default, so the recipe loader validates any method generically (as mergekit's `MergeMethod` declares
`parameters` and `tensor_parameters`). The engine streams each tensor in flat chunks: `combine` receives a
lazy iterator of the models' chunks, so a method that folds (linear) holds one input chunk at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch

from growth.foundation.errors import ConfigError
from growth.foundation.registry import Registry


@dataclass(frozen=True)
class Param:
    name: str
    required: bool = False
    default: Any = None
    doc: str = ""


class MergeMethod:
    """Base shape of a merge method; subclasses set the declarations and implement `resolve` and `combine`."""

    name: str = ""
    parameters: tuple[Param, ...] = ()
    model_parameters: tuple[Param, ...] = ()

    def resolve(self, params: Mapping[str, Any], model_params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Validate parameters before any weights load; return what `combine` needs (e.g. final weights)."""
        raise NotImplementedError

    def combine(self, chunks: Iterable[torch.Tensor], resolved: Mapping[str, Any], out: torch.Tensor) -> None:
        """Merge one chunk position into `out` (fp32): `chunks` yields each model's chunk in model order.

        A yielded chunk is only valid until the next one is requested (the engine reuses one read buffer),
        so a method that needs all models at once must copy them."""
        raise NotImplementedError


def fill_params(declared: Sequence[Param], given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Apply defaults, reject unknown and missing required keys; `where` names the place in the recipe."""
    known = {p.name for p in declared}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown parameter {unknown[0]!r}; "
                          f"known: {', '.join(sorted(known)) or 'none'}")
    out: dict[str, Any] = {}
    for p in declared:
        if p.name in given:
            out[p.name] = given[p.name]
        elif p.required:
            raise ConfigError(f"{where}: parameter {p.name!r} is required ({p.doc})")
        else:
            out[p.name] = p.default
    return out


METHODS: Registry[MergeMethod] = Registry("merge method")
METHODS.register("linear", "growth.merge.linear:LINEAR")
