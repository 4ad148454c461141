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
