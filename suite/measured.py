"""Measured scores: one finished run per model and benchmark, picked in DuckDB, for the leaderboard, regress and plots.

A model may have several finished runs of one benchmark (re-runs, other backends, --limit smoke runs). `pick`
chooses which counts: "latest" (most recently finished) or "best" (highest primary score). The choice is one window
query in DuckDB, so a store with hundreds of thousands of runs answers in milliseconds. Values come back on the
display scale (x100), with the run's settings (shots, limit) so callers can refuse to compare unlike with unlike.
"""

from __future__ import annotations

import difflib
from typing import Any

from growth.errors import GrowbenchError
from suite.store import Store

PICKS = ("latest", "best")


class ResultsError(GrowbenchError):
    """The results database lacks what a report needs (no runs, unknown model)."""


_ORDER = {"latest": "r.finished_at DESC, r.run_id", "best": "s.value DESC, r.finished_at DESC, r.run_id"}

_PICKED_SQL = """
SELECT r.model_id, m.name, m.kind, m.step, m.tokens, r.benchmark, r.run_id, s.metric, s.filter,
       s.value * 100 AS value, s.stderr * 100 AS stderr, s.n, r.num_fewshot, r.limit_n, r.backend, r.finished_at
FROM eval_runs r
JOIN scores s ON s.run_id = r.run_id AND s.is_primary AND s.task = r.benchmark
JOIN models m ON m.model_id = r.model_id
WHERE r.status = 'finished' AND r.model_id IN (SELECT unnest(?::VARCHAR[])) {suite_filter}
QUALIFY row_number() OVER (PARTITION BY r.model_id, r.benchmark ORDER BY {order}) = 1
ORDER BY r.model_id, r.benchmark
"""


def require_runs(store: Store) -> None:
    """Fail with one line when the store has no finished evaluation run at all."""
    hint = "run `growbench eval` or `growbench sweep` first, or pass --db"
    if not store.path.exists():
        raise ResultsError(f"no results database at {store.path}; {hint}")
    count = store.query("SELECT count(*) AS n FROM eval_runs WHERE status = 'finished'")["n"].iloc[0]
    if count == 0:
        raise ResultsError(f"the results database {store.path} has no finished evaluation runs; {hint}")


def resolve_models(store: Store, patterns: list[str]) -> list[dict[str, Any]]:
    """Models matching each pattern (id, name, path or name glob), in pattern order; unknown ones suggest names."""
    found: list[dict[str, Any]] = []
    for pattern in patterns:
        matches = store.find_models(pattern)
        if not matches:
            names = store.query("SELECT name FROM models")["name"].dropna().tolist()
            close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}?" if close else f"{len(names)} models are registered"
            raise ResultsError(f"no model {pattern!r} in {store.path}; {hint} (`growbench leaderboard` with no "
                               "--models lists every evaluated model)")
        found.extend(m for m in matches if m["model_id"] not in {f["model_id"] for f in found})
    return found


def resolve_one(store: Store, pattern: str) -> dict[str, Any]:
    models = resolve_models(store, [pattern])
    if len(models) > 1:
        raise ResultsError(f"{pattern!r} matches {len(models)} models ({', '.join(m['name'] for m in models[:5])}"
                           f"{', ...' if len(models) > 5 else ''}); name one model id, name or path")
    return models[0]


def evaluated_models(store: Store, suite: str | None) -> list[dict[str, Any]]:
    """Every model with a finished run (in `suite`, if given), seeds and trained steps before merges."""
    where = "AND r.suite = ?" if suite else ""
    df = store.query(f"SELECT * FROM models m WHERE m.model_id IN (SELECT r.model_id FROM eval_runs r WHERE "
                     f"r.status = 'finished' {where}) ORDER BY m.training_run NULLS FIRST, m.step NULLS LAST, m.name",
                     [suite] if suite else [])
    return df.to_dict("records")


def picked_scores(store: Store, model_ids: list[str], *, suite: str | None = None, pick: str = "latest") -> Any:
    """DataFrame of the picked finished run per (model, benchmark), values and stderr on the x100 scale."""
    if pick not in PICKS:
        raise ResultsError(f"unknown pick {pick!r}; use one of {', '.join(PICKS)}")
    sql = _PICKED_SQL.format(suite_filter="AND r.suite = ?" if suite else "", order=_ORDER[pick])
    return store.query(sql, [list(model_ids)] + ([suite] if suite else []))
