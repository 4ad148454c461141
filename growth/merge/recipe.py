"""Merge recipes: YAML -> dataclasses, checked against the method's declared parameters before weights load.

    method: linear          # a name in growth.merge.methods.METHODS
    normalize: true         # method parameters sit at the top level
    dtype: bfloat16         # output dtype; omit to keep the inputs'
    models:
      - path: runs/a/checkpoints/step-169984
        weight: 0.30        # per-model method parameters sit beside the path
        role: code anchor   # optional: what the selector chose it for, and the scores behind that
        evidence: {mbpp: 0.7884}
    selection: {...}        # optional: the selector's record (strategy, suite, candidates); kept as is

The same file is what `growbench select` writes and what `growbench merge --recipe` reads; `mergekit_yaml`
turns it into mergekit's format (growth/merge/mergekit.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from growth.checkpoint import parse_dtype
from growth.foundation.config import read_yaml
from growth.foundation.errors import CheckpointError, ConfigError
from growth.merge.linear import SUM_TOLERANCE
from growth.merge.methods import METHODS, MergeMethod, fill_params

_TOP_KEYS = {"method", "models", "dtype", "name", "selection"}
_MODEL_KEYS = {"path", "role", "evidence", "name"}


@dataclass
class ModelEntry:
    path: str
    params: dict[str, Any]
    role: str | None = None
    name: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, **self.params}
        out.update({k: v for k, v in (("name", self.name), ("role", self.role)) if v is not None})
        if self.evidence:
            out["evidence"] = self.evidence
        return out


@dataclass
class MergeRecipe:
    models: list[ModelEntry]
    method: str = "linear"
    params: dict[str, Any] = field(default_factory=dict)
    dtype: str | None = None
    name: str | None = None
    selection: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        impl = self.impl()
        if not self.models:
            raise ConfigError("recipe lists no models; give at least one under `models:` or "
                              "--model PATH:WEIGHT")
        self.params = fill_params(impl.parameters, self.params, "recipe")
        for i, m in enumerate(self.models):
            m.params = fill_params(impl.model_parameters, m.params, f"model {i + 1} ({m.path})")
        if self.dtype is not None:
            try:
                parse_dtype(self.dtype)
            except CheckpointError as e:
                raise ConfigError(f"recipe dtype: {e}") from None
        self.resolved = impl.resolve(self.params, [m.params for m in self.models])

    def normalised(self) -> str | None:
        """One line saying how normalising changed the weights as given (their sum was not 1), else None: a
        user's 0.7 + 0.7 is a mistake as often as a ratio."""
        given = [m.params.get("weight") for m in self.models]
        weights = self.resolved.get("weights")
        if not self.params.get("normalize") or not weights or None in given:
            return None
        total = math.fsum(given)
        if abs(total - 1.0) <= SUM_TOLERANCE:
            return None
        return (f"weights sum to {total:.4g}; normalised to {', '.join(f'{w:.4g}' for w in weights)} "
                "(--no-normalize to keep them)")

    def impl(self) -> MergeMethod:
        return METHODS.get(self.method)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, **self.params}
        if self.name:
            out["name"] = self.name
        if self.dtype:
            out["dtype"] = self.dtype
        out["models"] = [m.to_dict() for m in self.models]
        if self.selection:
            out["selection"] = self.selection
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def with_overrides(recipe: MergeRecipe, *, dtype: str | None = None, **params: Any) -> MergeRecipe:
    """`recipe` with method parameters (e.g. normalize) and the output dtype replaced where given (None: keep)."""
    data = recipe.to_dict() | {k: v for k, v in params.items() if v is not None}
    if dtype:
        data["dtype"] = dtype
    return recipe_from_dict(data, recipe.name or "recipe")


def recipe_from_dict(data: Any, where: str = "recipe") -> MergeRecipe:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    models = data.get("models")
    if not isinstance(models, list):
        raise ConfigError(f"{where}: `models` must be a list of {{path, weight}} entries")
    entries = []
    for i, m in enumerate(models):
        if not isinstance(m, Mapping) or not isinstance(m.get("path"), str):
            raise ConfigError(f"{where}: model {i + 1} needs a `path`")
        evidence = m.get("evidence") or {}
        if not isinstance(evidence, Mapping):
            raise ConfigError(f"{where}: model {i + 1}: `evidence` must be a mapping")
        entries.append(ModelEntry(path=m["path"], params={k: v for k, v in m.items() if k not in _MODEL_KEYS},
                                  role=m.get("role"), name=m.get("name"), evidence=dict(evidence)))
    return MergeRecipe(models=entries, method=str(data.get("method", "linear")),
                       params={k: v for k, v in data.items() if k not in _TOP_KEYS},
                       dtype=data.get("dtype"), name=data.get("name"), selection=data.get("selection"))


def load_recipe(path: str | Path) -> MergeRecipe:
    """A recipe YAML. Its model entries carry the method's own parameters, so they are checked against the method's
    declared parameters (recipe_from_dict) rather than a fixed dataclass."""
    return recipe_from_dict(read_yaml(path), str(path))


def parse_model_weight(spec: str) -> tuple[str, float]:
    """Split an inline `PATH:WEIGHT` (the last colon separates, so paths may contain colons)."""
    path, sep, weight = spec.rpartition(":")
    try:
        if not sep or not path:
            raise ValueError
        return path, float(weight)
    except ValueError:
        raise ConfigError(f"--model {spec!r}: expected PATH:WEIGHT, "
                          "e.g. runs/a/checkpoints/step-000100:0.5") from None


def inline_recipe(specs: Sequence[str], params: Mapping[str, Any], dtype: str | None = None) -> MergeRecipe:
    """The recipe for `--model PATH:WEIGHT ...` on the command line (linear method)."""
    models = [ModelEntry(path=p, params={"weight": w}) for p, w in map(parse_model_weight, specs)]
    return MergeRecipe(models=models, params=dict(params), dtype=dtype)


def given_recipe(recipe: str | Path | None, models: Sequence[str], *, dtype: str | None = None,
                 normalize: bool | None = None, allow_negative: bool | None = None) -> MergeRecipe:
    """The recipe `growbench merge` names, a recipe file or inline PATH:WEIGHT models (exactly one), with the given
    overrides (None: as the recipe says)."""
    if (recipe is None) == (not models):
        raise ConfigError("give either --recipe FILE or one or more --model PATH:WEIGHT")
    given = load_recipe(recipe) if recipe is not None else inline_recipe(models, {})
    return with_overrides(given, dtype=dtype, normalize=normalize, allow_negative=allow_negative)
