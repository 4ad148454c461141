"""How a model is shown to people: its name (models.name), with a short id only where two shown models share a
name, so tables and summaries read as the lineage reads (tiny-seed, tiny-train@32), never as fingerprints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from suite.store.db import Store

SHORT_ID = 8
"""Characters of a model id that tell two same-named models apart."""


def labels(models: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """{model id: label} for (id, name) pairs: the name, or `name (id[:8])` where the name repeats among them; a
    model without a name is its short id."""
    pairs = list(dict(models).items())
    counts = Counter(name for _, name in pairs)
    return {model_id: (f"{name} ({model_id[:SHORT_ID]})" if counts[name] > 1 else name) if name
            else model_id[:SHORT_ID] for model_id, name in pairs}


def model_labels(store: Store, model_ids: Iterable[str], *, distinct_in_store: bool = False) -> dict[str, str]:
    """Labels of stored models (an id not in the store stays its id). Names that repeat among `model_ids` get a
    short id; with `distinct_in_store`, also names that repeat anywhere in the store (a one-model summary line,
    which must name the model unambiguously)."""
    ids = list(dict.fromkeys(model_ids))
    if not ids or not store.path.exists():
        return {i: i for i in ids}
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT model_id, name FROM models "
                           "WHERE model_id IN (SELECT unnest(?::VARCHAR[])) OR (? AND name IN "
                           "(SELECT name FROM models WHERE model_id IN (SELECT unnest(?::VARCHAR[]))))",
                           [ids, distinct_in_store, ids]).fetchall()
    shown = labels(rows)
    return {i: shown.get(i, i) for i in ids}
