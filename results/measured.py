"""Measured scores: one finished run per model and benchmark, picked in DuckDB, for the leaderboard, regress and plots.

A model may have several finished runs of one benchmark (re-runs, other backends, --limit smoke runs). `pick`
chooses which counts: "latest" (most recently finished) or "best" (highest primary score). The choice is one
aggregate query in DuckDB, so a store with hundreds of thousands of runs answers in milliseconds. Values come back on the
display scale (x100), with the run's settings (shots, limit, metric) so callers can refuse to compare unlike with
unlike. A report opens the store once (`reading`) and runs all its queries on that one read-only connection.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from growth.foundation.errors import GrowbenchError
from suite.store import Store

PICKS = ("latest", "best")


class ResultsError(GrowbenchError):
    """The results database lacks what a report needs (no runs, unknown model)."""


# Pick with a hash aggregate (arg_max) over the candidate runs, then fetch the 14-per-model picked rows: several times
# faster in DuckDB than a sorted window over every run. Ties break on run_id so a pick is deterministic.
_PICK = {
    "latest": "SELECT arg_max(run_id, (finished_at, run_id)) AS run_id FROM runs WHERE run_id IN "
              "(SELECT run_id FROM scores WHERE is_primary) GROUP BY model_id, benchmark",
    "best": "SELECT arg_max(runs.run_id, (s.value, runs.finished_at, runs.run_id)) AS run_id FROM runs JOIN scores s "
            "ON s.run_id = runs.run_id AND s.is_primary AND s.task = runs.benchmark GROUP BY runs.model_id, "
            "runs.benchmark",
}

_PICKED_SQL = """
WITH runs AS (
    SELECT r.run_id, r.model_id, r.benchmark, r.finished_at FROM eval_runs r
    {model_filter}
    WHERE r.status = 'finished' {suite_filter}),
picked AS ({pick})
SELECT r.model_id, m.name, m.kind, m.step, m.tokens, r.benchmark, r.run_id, s.metric, s.filter,
       s.value * 100 AS value, s.stderr * 100 AS stderr, s.n, r.num_fewshot, r.limit_n, r.backend, r.finished_at
FROM picked JOIN eval_runs r ON r.run_id = picked.run_id
JOIN scores s ON s.run_id = r.run_id AND s.is_primary AND s.task = r.benchmark
JOIN models m ON m.model_id = r.model_id
ORDER BY r.model_id, r.benchmark
"""

# Store.find_models' matching rule (id, name, path, absolute path, or name glob) for many patterns in one query.
_RESOLVE_SQL = """
SELECT p.i, m.* FROM (SELECT unnest(?::VARCHAR[]) AS pattern, unnest(?::VARCHAR[]) AS absolute,
                             generate_subscripts(?::VARCHAR[], 1) AS i) p
JOIN models m ON m.model_id = p.pattern OR m.name = p.pattern OR m.path = p.pattern OR m.path = p.absolute
              OR m.name GLOB p.pattern
ORDER BY p.i, m.step NULLS FIRST, m.name
"""


def records(cursor: Any) -> list[dict[str, Any]]:
    """Rows of an executed query as dicts (much faster than a DataFrame round trip for thousands of rows)."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


@contextmanager
def reading(store: Store) -> Iterator[Any]:
    """One read-only connection to a store that has at least one finished run; one-line errors otherwise."""
    hint = "run `growbench eval` or `growbench sweep` first, or pass --db"
    if not store.path.exists():
        raise ResultsError(f"no results database at {store.path}; {hint}")
    with store.connect(read_only=True) as con:
        if not con.execute("SELECT count(*) FROM eval_runs WHERE status = 'finished'").fetchone()[0]:
            raise ResultsError(f"the results database {store.path} has no finished evaluation runs; {hint}")
        yield con


def resolve_models(con: Any, patterns: list[str]) -> list[dict[str, Any]]:
    """Models matching each pattern (id, name, path or name glob), in pattern order; unknown ones suggest names."""
    absolute = [str(Path(p).absolute()) for p in patterns]
    rows = records(con.execute(_RESOLVE_SQL, [patterns, absolute, patterns]))
    for i, pattern in enumerate(patterns, start=1):
        if not any(r["i"] == i for r in rows):
            names = [row[0] for row in con.execute("SELECT name FROM models WHERE name IS NOT NULL").fetchall()]
            close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}?" if close else f"{len(names)} models are registered"
            raise ResultsError(f"no model {pattern!r} in the results database; {hint} (`growbench leaderboard` "
                               "with no --models lists every evaluated model)")
    unique = {r["model_id"]: {k: v for k, v in r.items() if k != "i"} for r in reversed(rows)}
    return list(reversed(unique.values()))


def resolve_one(con: Any, pattern: str) -> dict[str, Any]:
    models = resolve_models(con, [pattern])
    if len(models) > 1:
        raise ResultsError(f"{pattern!r} matches {len(models)} models ({', '.join(m['name'] for m in models[:5])}"
                           f"{', ...' if len(models) > 5 else ''}); name one model id, name or path")
    return models[0]


def evaluated_models(con: Any, suite: str | None) -> list[dict[str, Any]]:
    """Every model with a finished run (in `suite`, if given), seeds and trained steps before merges."""
    where = "AND r.suite = ?" if suite else ""
    return records(con.execute(f"SELECT * FROM models m WHERE m.model_id IN (SELECT r.model_id FROM eval_runs r "
                               f"WHERE r.status = 'finished' {where}) ORDER BY m.training_run NULLS FIRST, "
                               "m.step NULLS LAST, m.name", [suite] if suite else []))


def picked_scores(con: Any, model_ids: list[str] | None, *, suite: str | None = None, pick: str = "latest",
                  columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The picked finished run per (model, benchmark) as records, values and stderr on the x100 scale.

    `model_ids` None means every model. `columns` narrows the fetched fields (fetching into Python dominates for
    thousands of models)."""
    if pick not in PICKS:
        raise ResultsError(f"unknown pick {pick!r}; use one of {', '.join(PICKS)}")
    model_filter = ("" if model_ids is None else
                    "JOIN (SELECT DISTINCT unnest(?::VARCHAR[]) AS model_id) wanted ON wanted.model_id = r.model_id")
    sql = _PICKED_SQL.format(model_filter=model_filter, suite_filter="AND r.suite = ?" if suite else "",
                             pick=_PICK[pick])
    if columns:
        sql = f"SELECT {', '.join(columns)} FROM ({sql})"
    params = ([] if model_ids is None else [list(model_ids)]) + ([suite] if suite else [])
    return records(con.execute(sql, params))
