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
    """One line per model: each benchmark's score with its standard error and the documents it rests on, so a
    reader sees how far apart two columns must be before the difference means anything."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in picked_scores(con, [m["model_id"] for m in models], suite=suite, pick=pick):
        by_model.setdefault(row["model_id"], []).append(row)
    lines = []
    for m in models:
        cells = [f"{r['benchmark']} {r['value']:.2f} ± {_stderr(r['stderr'])} ({_docs(r['n'])})"
                 for r in by_model.get(m["model_id"], [])]
        lines.append(f"{m['name']}: {', '.join(cells) or 'no finished run'}")
    return lines


def _stderr(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _docs(n: int | None) -> str:
    return "? documents" if n is None else f"{int(n):,} documents"
