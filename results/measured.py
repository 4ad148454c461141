"""Measured scores on the report scale: the store's counted run per model and benchmark (suite/store/queries.py,
the one rule the selector uses too), with values and standard errors x100 as the card prints them, and each run's
settings (shots, limit, metric) so reports can refuse to compare unlike with unlike."""

from __future__ import annotations

from typing import Any

from suite.store.queries import picked_runs


def picked_scores(con: Any, model_ids: list[str] | None, *, suite: str | None = None, pick: str = "latest",
                  columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """`picked_runs` with `value` and `stderr` on the 0..100 display scale."""
    rows = picked_runs(con, model_ids, suite=suite, pick=pick, columns=columns)
    for row in rows:
        for key in ("value", "stderr"):
            if row.get(key) is not None:
                row[key] *= 100
    return rows


def precision_lines(con: Any, models: list[dict[str, Any]], suite: str | None, pick: str = "latest") -> list[str]:
    """A header and one line per model: the documents each benchmark's score rests on and its standard error
    (points), so a reader sees how far apart two columns must be before the difference means anything."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in picked_scores(con, [m["model_id"] for m in models], suite=suite, pick=pick):
        by_model.setdefault(row["model_id"], {})[row["benchmark"]] = row
    keys = list(dict.fromkeys(k for rows in by_model.values() for k in rows))
    width = max([len(m["name"]) for m in models] + [5])
    lines = [f"{'model':<{width}}  documents  standard error: {' / '.join(keys)}"]
    for m in models:
        rows = by_model.get(m["model_id"], {})
        docs = sorted({int(r["n"]) for r in rows.values() if r["n"] is not None})
        errors = " ".join(f"±{rows[k]['stderr']:.2f}" if k in rows and rows[k]["stderr"] is not None else "—"
                          for k in keys)
        lines.append(f"{m['name']:<{width}}  {'/'.join(map(str, docs)) or '—':>9}  {errors}")
    return lines
