"""The order models are shown in, as their lineage reads: the seed, the grown stages, each training run's
checkpoints by step, the merged models; models outside any lineage (an evaluated hub model, a lone checkpoint) after
them, by registration.

The lineage is the store's `parents` column (growth.json, training.json and merge.json, read at registration). A
model's generation is its longest chain of known ancestors, so a seed comes first, a second growth stage after the
first, and a training run's checkpoints (all children of the model it started from) after that; merged models close
their family. Of two models of one generation (a function-preserving stage and the grown model, both grown from the
seed), the one the lineage goes on from comes last, next to its children. Families (models connected through parents) follow one another in the order their first model was
registered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def _parents(model: dict[str, Any]) -> list[str]:
    parents = model.get("parents")
    return json.loads(parents) if isinstance(parents, str) else list(parents or [])


def lineage_order(models: list[dict[str, Any]], known: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """`models` (store rows) in lineage order. `known`: further rows (e.g. every model of the store) that link the
    shown ones, so two checkpoints whose start model is not shown still read as one run."""
    by_id = {m["model_id"]: m for m in [*known, *models]}
    parents = {i: [p for p in _parents(m) if p in by_id and p != i] for i, m in by_id.items()}
    root = {i: i for i in by_id}

    def find(i: str) -> str:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i, ps in parents.items():
        for p in ps:
            root[find(i)] = find(p)
    depth: dict[str, int] = {}

    def generation(i: str, seen: frozenset[str] = frozenset()) -> int:
        if i not in depth:
            ps = [p for p in parents[i] if p not in seen]
            depth[i] = 1 + max(generation(p, seen | {i}) for p in ps) if ps else 0
        return depth[i]

    def registered(m: dict[str, Any]) -> str:
        return str(m.get("registered_at") or "")

    has_children = {p for ps in parents.values() for p in ps}
    families: dict[str, list[dict[str, Any]]] = {}
    for m in by_id.values():
        families.setdefault(find(m["model_id"]), []).append(m)
    first = {f: min(registered(m) for m in members) for f, members in families.items()}
    runs: dict[str, str] = {}
    for m in sorted(by_id.values(), key=registered):
        if m.get("training_run"):
            runs.setdefault(m["training_run"], registered(m))

    def key(m: dict[str, Any]) -> tuple[Any, ...]:
        family = find(m["model_id"])
        if len(families[family]) == 1:
            return (1, registered(m), m.get("name") or "")
        step = m.get("step")
        return (0, first[family], family, m.get("kind") in ("merged", "candidate"), generation(m["model_id"]),
                runs.get(m.get("training_run") or "", ""), -1 if step is None or step != step else int(step),
                m["model_id"] in has_children, registered(m), m.get("name") or "")

    return sorted(models, key=key)
