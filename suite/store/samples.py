"""Per-document metric values of evaluation runs (table `sample_scores`): written with each run, read in pairs.

Every finished run stores, for each document of each lm-eval task it scored, the numeric per-document metric values
lm-eval computed (acc, acc_norm, exact_match, pass_at_1, ... per filter): one row of seven short columns, which
DuckDB compresses to a few bytes (MMLU's 14,042 documents x 2 metrics are ~30k rows). That is what lets `compare`
and the selector test a difference between two models document by document instead of guessing from two means.
`part` is the index of the benchmark's task entry the lm-eval task belongs to (a group's leaves share their
group's part), so a benchmark averaging several entries can weigh each one as its headline does.
"""

from __future__ import annotations

from typing import Any, Sequence

COLUMNS = ("run_id", "task", "part", "doc_id", "metric", "filter", "value")


def insert_sample_scores(con: Any, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Replace a run's per-document values (inside the caller's transaction); one bulk insert, not row by row."""
    import pandas as pd

    frame = pd.DataFrame({"run_id": run_id, "task": [r["task"] for r in rows],
                          "part": [int(r["part"]) for r in rows], "doc_id": [int(r["doc_id"]) for r in rows],
                          "metric": [r["metric"] for r in rows], "filter": [r["filter"] for r in rows],
                          "value": [float(r["value"]) for r in rows]}, columns=list(COLUMNS))
    con.execute("DELETE FROM sample_scores WHERE run_id = ?", [run_id])
    con.register("growbench_sample_rows", frame)
    try:
        con.execute(f"INSERT INTO sample_scores SELECT {', '.join(COLUMNS)} FROM growbench_sample_rows")
    finally:
        con.unregister("growbench_sample_rows")


def sample_values(con: Any, run_ids: Sequence[str], wanted: Sequence[tuple[int, str, str]]) -> Any:
    """DataFrame (run_id, part, task, doc_id, value) of the runs' values for each (part, metric, filter) wanted."""
    parts, metrics, filters = (list(x) for x in zip(*wanted)) if wanted else ([], [], [])
    return con.execute(
        "SELECT s.run_id, s.part, s.task, s.doc_id, s.value FROM sample_scores s "
        "JOIN (SELECT unnest(?::INTEGER[]) AS part, unnest(?::VARCHAR[]) AS metric, unnest(?::VARCHAR[]) AS filter) w "
        "ON s.part = w.part AND s.metric = w.metric AND s.filter = w.filter "
        "WHERE s.run_id IN (SELECT unnest(?::VARCHAR[]))",
        [parts, metrics, filters, list(run_ids)]).df()


def latest_runs(con: Any, model_id: str, suite: str, benchmarks: Sequence[str], limit: int | None
                ) -> dict[str, tuple[str, float | None]]:
    """benchmark -> (run_id, primary stderr) of the model's latest finished run with this --limit, per benchmark."""
    rows = con.execute(
        "SELECT r.benchmark, arg_max(r.run_id, r.finished_at), arg_max(s.stderr, r.finished_at) FROM eval_runs r "
        "JOIN scores s ON s.run_id = r.run_id AND s.is_primary AND s.task = r.benchmark "
        "WHERE r.model_id = ? AND r.suite = ? AND r.status = 'finished' AND r.limit_n IS NOT DISTINCT FROM ? "
        "AND r.benchmark IN (SELECT unnest(?::VARCHAR[])) GROUP BY r.benchmark",
        [model_id, suite, limit, list(benchmarks)]).fetchall()
    return {b: (run, None if stderr is None or stderr != stderr else float(stderr)) for b, run, stderr in rows}
