"""mergekit interop: export a recipe as mergekit YAML; find an external mergekit install to compare against.

mergekit is not a dependency: it pins its own transformers, so it lives in its own venv
(bench/setup_mergekit.sh). The equality test and bench/merge.py run its `mergekit-yaml` as a subprocess on the
exported YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from growth.dtype import dtype_name
from growth.merge.recipe import MergeRecipe

MERGEKIT_ENV = "GROWBENCH_MERGEKIT"
VENV_ENV = "GROWBENCH_MERGEKIT_VENV"  # where bench/setup_mergekit.sh installs, as it reads it
DEFAULT_VENV = Path(".mergekit-venv")  # relative to the working directory: the repo root in CI


def mergekit_yaml(recipe: MergeRecipe, out_dtype: str | None = None) -> str:
    """The equivalent mergekit config: fp32 computation (as growbench accumulates), output in `out_dtype`.

    `out_dtype` is the dtype the merge actually writes (the recipe's, else the inputs'); pass it so the file
    reproduces this merge rather than mergekit's own default.
    """
    doc: dict[str, Any] = {
        "merge_method": recipe.method,
        "models": [{"model": str(Path(m.path).absolute()), "parameters": dict(m.params)}
                   for m in recipe.models],
        "parameters": {k: v for k, v in recipe.params.items() if k != "allow_negative"},
        "dtype": "float32",
    }
    out = out_dtype or recipe.dtype
    if out:
        doc["out_dtype"] = dtype_name(out)
    return yaml.safe_dump(doc, sort_keys=False)


def find_mergekit() -> Path | None:
    """The `mergekit-yaml` to compare against: $GROWBENCH_MERGEKIT (the script or its venv's python), else the
    venv bench/setup_mergekit.sh fills ($GROWBENCH_MERGEKIT_VENV or ./.mergekit-venv); None if absent."""
    value = os.environ.get(MERGEKIT_ENV)
    path = Path(value) if value else Path(os.environ.get(VENV_ENV) or DEFAULT_VENV) / "bin" / "mergekit-yaml"
    if path.name.startswith("python"):
        path = path.parent / "mergekit-yaml"
    return path if path.is_file() and os.access(path, os.X_OK) else None
