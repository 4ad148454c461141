"""The store's read queries for reports and selection, with the one rule for which finished run counts.

A model may have several finished runs of one benchmark (re-runs, other backends, --limit smoke runs, the selector's
dev evaluations). `picked_runs` chooses the one that counts, for the leaderboard, plots, regressions and the
selector alike:
  latest  the most complete run (a full run before any --limit run, a larger limit before a smaller), then the most
          recently finished
  best    the highest primary score
The choice is one aggregate query in DuckDB (arg_max over the candidate runs, ties broken on run_id, so a pick is
deterministic), so a store with hundreds of thousands of runs answers in milliseconds. Values are lm-eval's 0..1.
A report opens the store once (`reading`) and runs all its queries on that one read-only connection.

Two more rules every reading command shares: without --suite it counts the one suite the named models (or a training
run's checkpoints, or the whole store) have finished runs in, and says which to choose when there are several
(`choose_suite`); a training run is named by its id or its folder alike (`training_run`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from growth.foundation.errors import GrowbenchError
from suite.store.db import Store

PICKS = ("latest", "best")


class ResultsError(GrowbenchError):
    """The store lacks what a caller asked for (no runs, an unknown model or training run)."""


_PICK = {
    "latest": "SELECT arg_max(run_id, (limit_n IS NULL, coalesce(limit_n, 0), finished_at, run_id)) AS run_id "
              "FROM runs WHERE run_id IN (SELECT run_id FROM scores WHERE is_primary) GROUP BY model_id, benchmark",
    "best": "SELECT arg_max(runs.run_id, (s.value, runs.finished_at, runs.run_id)) AS run_id FROM runs JOIN scores s "
            "ON s.run_id = runs.run_id AND s.is_primary AND s.task = runs.benchmark GROUP BY runs.model_id, "
            "runs.benchmark",
}

_PICKED_SQL = """
WITH runs AS (
    SELECT r.run_id, r.model_id, r.benchmark, r.finished_at, r.limit_n FROM eval_runs r
    {model_filter}
    WHERE r.status = 'finished' {suite_filter}),
picked AS ({pick})
SELECT r.model_id, m.name, m.kind, m.step, m.tokens, r.benchmark, r.run_id, s.metric, s.filter,
       s.value, s.stderr, s.n, r.num_fewshot, r.limit_n, r.backend, r.suite, r.finished_at, r.deviation
FROM picked JOIN eval_runs r ON r.run_id = picked.run_id
JOIN scores s ON s.run_id = r.run_id AND s.is_primary AND s.task = r.benchmark
JOIN models m ON m.model_id = r.model_id
ORDER BY r.model_id, r.benchmark
"""

# The model matching rule (id, name, path, absolute path, or name glob) for many patterns in one query; a glob
# leaves out the selector's scratch merges (kind 'candidate'), which only their id, name or path finds.
_MATCH_SQL = """
SELECT p.i, m.* FROM (SELECT unnest(?::VARCHAR[]) AS pattern, unnest(?::VARCHAR[]) AS absolute,
                             generate_subscripts(?::VARCHAR[], 1) AS i) p
JOIN models m ON m.model_id = p.pattern OR m.name = p.pattern OR m.path = p.pattern OR m.path = p.absolute
              OR (m.name GLOB p.pattern AND m.kind IS DISTINCT FROM 'candidate')
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


def _matches(con: Any, patterns: list[str]) -> list[dict[str, Any]]:
    absolute = [str(Path(p).absolute()) for p in patterns]
    return records(con.execute(_MATCH_SQL, [patterns, absolute, patterns]))


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique = {r["model_id"]: {k: v for k, v in r.items() if k != "i"} for r in reversed(rows)}
    return list(reversed(unique.values()))


def match_models(con: Any, patterns: list[str]) -> list[dict[str, Any]]:
    """Models matching any pattern, in pattern order then step order, each once (possibly none)."""
    return _unique(_matches(con, patterns))


def find_models(store: Store, pattern: str) -> list[dict[str, Any]]:
    """Models whose id, name or path equals `pattern`, or whose name matches it as a glob (none without a store)."""
    if not store.path.exists():
        return []
    with store.connect(read_only=True) as con:
        return match_models(con, [pattern])


def resolve_models(con: Any, patterns: list[str]) -> list[dict[str, Any]]:
    """Models matching each pattern, in pattern order; a pattern that matches nothing suggests names."""
    rows = _matches(con, patterns)
    for i, pattern in enumerate(patterns, start=1):
        if not any(r["i"] == i for r in rows):
            names = [row[0] for row in con.execute("SELECT name FROM models WHERE name IS NOT NULL").fetchall()]
            close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}?" if close else f"{len(names)} models are registered"
            raise ResultsError(f"no model {pattern!r} in the results database; {hint} (`growbench leaderboard` "
                               "with no --models lists every evaluated model)")
    return _unique(rows)


def resolve_one(con: Any, pattern: str) -> dict[str, Any]:
    models = resolve_models(con, [pattern])
    if len(models) > 1:
        raise ResultsError(f"{pattern!r} matches {len(models)} models ({', '.join(m['name'] for m in models[:5])}"
                           f"{', ...' if len(models) > 5 else ''}); name one model id, name or path")
    return models[0]


def evaluated_models(con: Any, suite: str | None, *, candidates: bool = False) -> list[dict[str, Any]]:
    """Every model with a finished run (in `suite`, if given) in registration order; the selector's scratch merges
    (kind 'candidate') only with `candidates`."""
    where = "AND r.suite = ?" if suite else ""
    kind = "" if candidates else "AND m.kind IS DISTINCT FROM 'candidate'"
    return records(con.execute(f"SELECT * FROM models m WHERE m.model_id IN (SELECT r.model_id FROM eval_runs r "
                               f"WHERE r.status = 'finished' {where}) {kind} ORDER BY m.registered_at, m.name",
                               [suite] if suite else []))


def run_checkpoints(con: Any, run: str) -> list[dict[str, Any]]:
    """The registered checkpoints of training run `run` in step order; an unknown run suggests known ones."""
    models = records(con.execute("SELECT * FROM models WHERE training_run = ? AND step IS NOT NULL ORDER BY step",
                                 [run]))
    if not models:
        names = [row[0] for row in
                 con.execute("SELECT DISTINCT training_run FROM models WHERE training_run IS NOT NULL").fetchall()]
        close = difflib.get_close_matches(run, names, n=3, cutoff=0.4)
        raise ResultsError(f"no checkpoints of training run {run!r} in the results database; "
                           + (f"did you mean {' or '.join(close)}?" if close else
                              f"known runs: {', '.join(names[:10]) or 'none'}"))
    return models


def finished_suites(con: Any, model_ids: list[str] | None = None, *, every: bool = False) -> list[str]:
    """Suites holding finished runs (of any of `model_ids`, or of each of them with `every`; None: of any model),
    most runs first."""
    wanted = "" if model_ids is None else "AND model_id IN (SELECT unnest(?::VARCHAR[]))"
    having = "HAVING count(DISTINCT model_id) = ?" if every and model_ids is not None else ""
    params = [] if model_ids is None else [list(model_ids)] + ([len(set(model_ids))] if every else [])
    rows = con.execute(f"SELECT suite FROM eval_runs WHERE status = 'finished' {wanted} GROUP BY suite {having} "
                       "ORDER BY count(*) DESC, suite", params).fetchall()
    return [r[0] for r in rows]


def one_suite(con: Any, suite: str | None, model_ids: list[str] | None = None, *, every: bool = False,
              whose: str = "any model") -> str:
    """The suite a reading command counts runs of: --suite when given, else the only suite `whose` finished runs
    (those of `model_ids`, or of the whole store) are in; one line naming the choices when there are several."""
    if suite:
        return suite
    suites = finished_suites(con, model_ids, every=every)
    if len(suites) == 1:
        return suites[0]
    if not suites:
        raise ResultsError(f"no finished evaluation runs of {whose} in any suite; run `growbench sweep` first")
    raise ResultsError(f"finished runs of {whose} are in suites {', '.join(suites)}; choose one with --suite")


def choose_suite(store: Store, suite: str | None, *, models: list[str] | None = None, run: str | None = None,
                 every: bool = False) -> str:
    """`one_suite` for a command line: the models named (patterns), or training run `run`'s checkpoints, or the
    whole store, read on one connection."""
    if suite:
        return suite
    with reading(store) as con:
        if run is not None:
            return one_suite(con, None, [m["model_id"] for m in run_checkpoints(con, run)],
                             whose=f"the checkpoints of training run {run!r}")
        if models:
            found = resolve_models(con, models)
            return one_suite(con, None, [m["model_id"] for m in found], every=every,
                             whose=" and ".join(dict.fromkeys(m["name"] for m in found)))
        return one_suite(con, None)


def training_run(store: Store, given: str) -> tuple[str, Path]:
    """(run id, run folder) of a training run named by its id (models.training_run) or its folder (the one whose
    checkpoints/step-* are registered with that run; relative paths too); one line with close matches otherwise."""
    if not store.path.exists():
        raise ResultsError(f"no results database at {store.path}; run `growbench pipeline` or `growbench train` "
                           "and `growbench sweep` first, or pass --db")
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT training_run, path FROM models WHERE training_run IS NOT NULL AND step IS NOT "
                           "NULL ORDER BY step").fetchall()
    folders: dict[str, Path] = {}
    for run, path in rows:
        parent = Path(path).parent  # RUN_DIR/checkpoints/step-N, or a folder of step-N
        folders.setdefault(run, parent.parent if parent.name == "checkpoints" else parent)
    if given in folders:
        return given, folders[given]
    absolute = Path(given).absolute()
    for run, folder in folders.items():
        if absolute in (folder, folder / "checkpoints") or Path(given).resolve() == folder.resolve():
            return run, folder
    close = difflib.get_close_matches(given, list(folders), n=3, cutoff=0.4)
    raise ResultsError(f"no training run {given!r} (a run id or a run folder) in {store.path}; "
                       + (f"did you mean {' or '.join(f'{r} ({folders[r]})' for r in close)}?" if close else
                          f"runs: {', '.join(f'{r} ({f})' for r, f in sorted(folders.items())) or 'none'}"))


def merged_children(con: Any, model_ids: set[str]) -> list[dict[str, Any]]:
    """Merged models with at least one parent in `model_ids`."""
    merged = records(con.execute("SELECT * FROM models WHERE kind = 'merged'"))
    return [m for m in merged if model_ids & set(json.loads(m["parents"] or "[]"))]


def picked_runs(con: Any, model_ids: list[str] | None, *, suite: str | None = None, pick: str = "latest",
                columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The run that counts per (model, benchmark) as records, values and stderr on lm-eval's 0..1 scale.

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
