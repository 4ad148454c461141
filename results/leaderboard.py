"""The card-style leaderboard: benchmarks as rows, models as columns, reported and measured side by side.

Reported columns come from a reported set (results/reported/, results/reported_scores.py); measured columns are the picked
finished run per model and benchmark from the DuckDB store (suite/store/queries.py, shown x100 by results/measured.py). Averages follow the card's own
definitions ("Avg General" = the 9 knowledge/reasoning/commonsense rows, "Avg All" = all 14). The best value of a row
is bold and the second underlined, compared at the 2 decimals shown so that ties get the same mark. Anything the
reader should know to trust the numbers (a missing score left out of an average, a --limit run, a card average that
is not the mean of its rows) becomes a visible note under the table. Rendering lives in results/leaderboard_format.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from results.lineage import lineage_order
from results.marks import Cell, average_test, paired_test, significance_marks, stderr_test
from results.measured import picked_scores
from results.reported_scores import ReportedSet
from suite.eval.benchmarks import DEFAULT_SUITE, Suite, as_suite, load_suite
from suite.eval.significance import mean_stderr
from suite.store import Store
from suite.store.names import labels
from suite.store.queries import ResultsError, evaluated_models, match_models, reading, resolve_models

Mark = Literal["best", "second"] | None
MARKS = ("value", "significance")


@dataclass(frozen=True)
class Column:
    label: str
    source: Literal["reported", "measured"]
    tokens: str | None
    highlight: bool = False


@dataclass
class Row:
    label: str
    key: str
    kind: Literal["tokens", "score", "blank", "average"]
    values: list[float | str | None]
    marks: list[Mark] = field(default_factory=list)


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    notes: list[str]


def format_tokens(tokens: float | None) -> str | None:
    """Token counts the way cards write them: 2T, 1.36T, 500B, 12M."""
    if tokens is None:
        return None
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if tokens >= size:
            return f"{tokens / size:.3g}{unit}"
    return str(int(tokens))


def mark_row(values: list[float | str | None]) -> list[Mark]:
    """Best bold, second underlined; values equal at 2 decimals share a mark, so a tie for second marks both."""
    shown = [round(v, 2) if isinstance(v, float) else None for v in values]
    distinct = sorted({v for v in shown if v is not None}, reverse=True)
    marks: list[Mark] = []
    for v in shown:
        marks.append("best" if distinct and v == distinct[0] else
                     "second" if len(distinct) > 1 and v == distinct[1] else None)
    return marks


def suite_layout(suite: str | Suite) -> tuple[list[tuple[str, str]], list[tuple[str, list[str]]]]:
    """(key, title) rows and (name, keys) averages of a suite, for leaderboards without a reported set."""
    benchmarks = as_suite(suite).benchmarks
    general = [b.key for b in benchmarks if b.in_avg_general]
    return ([(b.key, b.title) for b in benchmarks],
            [("Avg General", general), ("Avg All", [b.key for b in benchmarks])])


def _chosen(con: Any, models: list[str] | None, suite: str | None, candidates: bool) -> list[dict[str, Any]]:
    """The measured models in lineage order (results/lineage.py): every evaluated one (the selector's scratch
    merges only with `candidates`), or the matches of each of `models` in turn."""
    known = match_models(con, ["*"])
    if not models:
        return lineage_order(evaluated_models(con, suite, candidates=candidates), known)
    chosen = {m["model_id"]: m for pattern in models for m in lineage_order(resolve_models(con, [pattern]), known)}
    return list(chosen.values())


def _measured(store: Store, models: list[str] | None, keys: list[str], suite: str | None, pick: str,
              suffix: str, candidates: bool = False
              ) -> tuple[list[Column], list[dict[str, float | None]], list[str], list[dict[str, Cell]]]:
    """Measured columns: the picked run per model and benchmark, with notes on --limit runs, imported runs whose
    settings differ from the suite's, and empty columns, and each score's standard error and run (for significance
    marks)."""
    with reading(store) as con:
        chosen = _chosen(con, models, suite, candidates)
        picked = picked_scores(con, [m["model_id"] for m in chosen], suite=suite, pick=pick,
                               columns=("model_id", "benchmark", "value", "stderr", "run_id", "limit_n",
                                        "deviation"))
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in picked:
        by_model.setdefault(rec["model_id"], {})[rec["benchmark"]] = rec
    columns, scores, cells = [], [], []
    subsets: dict[tuple[tuple[str, ...], tuple[int, ...]], list[str]] = {}
    notes = [f"Measured columns: the {pick} finished run per model and benchmark from {store.path}."]
    names = labels((m["model_id"], m["name"]) for m in chosen)
    for m in chosen:
        name = names[m["model_id"]]
        recs = by_model.get(m["model_id"], {})
        columns.append(Column(f"{name}{suffix}", "measured", format_tokens(m.get("tokens"))))
        scores.append({k: float(recs[k]["value"]) if k in recs else None for k in keys})
        cells.append({k: Cell(float(r["value"]), r["stderr"], r["run_id"]) for k, r in recs.items()})
        limited = tuple(sorted(k for k, r in recs.items() if r["limit_n"] is not None))
        if limited:
            limits = tuple(sorted({int(r["limit_n"]) for r in recs.values() if r["limit_n"] is not None}))
            subsets.setdefault((limited, limits), []).append(name)
        for k, r in sorted(recs.items()):
            if r["deviation"]:
                notes.append(f"{name}: {k} is imported lm-eval output whose settings differ from the suite's "
                             f"({r['deviation']}); not comparable with the other {k} scores.")
        if not recs:
            notes.append(f"{name}: no finished run in suite {suite}; its column is empty.")
    for (keys, limits), limited_names in subsets.items():  # one note per group of columns limited alike
        notes.append(f"{', '.join(limited_names)}: {', '.join(keys)} measured on a --limit subset "
                     f"({' or '.join(map(str, limits))} documents per task), not the full benchmark.")
    return columns, scores, notes, cells


def _average(name: str, keys: list[str], column: Column, scores: dict[str, float | None],
             printed: float | None, notes: list[str]) -> float | None:
    """The mean of the present scores; a card's printed value wins, with a note when it is not that mean."""
    present = [scores[k] for k in keys if scores.get(k) is not None]
    missing = [k for k in keys if scores.get(k) is None]
    mean = sum(present) / len(present) if present else None
    if printed is not None:
        if missing or mean is None or abs(round(mean, 2) - printed) > 0.001:
            recomputed = f"{mean:.2f}" if mean is not None and not missing else "not computable (missing scores)"
            notes.append(f"{name} for {column.label} is shown as the source prints it ({printed:.2f}); the mean of "
                         f"its {len(keys)} benchmarks is {recomputed}.")
        return printed
    if missing and present:
        notes.append(f"{name} for {column.label} leaves out {', '.join(missing)} (no score): mean of "
                     f"{len(present)} of {len(keys)} benchmarks.")
    return mean


def build_leaderboard(store: Store | None, *, reported: ReportedSet | None = None, models: list[str] | None = None,
                      suite: str | None = DEFAULT_SUITE, pick: str = "latest", marks: str = "value",
                      alpha: float = 0.05, candidates: bool = False) -> Leaderboard:
    """Assemble the table. `models` are store patterns (default: every evaluated model unless only `reported`;
    the selector's scratch merges only with `candidates`), columns in lineage order.
    `marks`: value (the card's: best and second by the 2 decimals shown) or significance (results/marks.py)."""
    if marks not in MARKS:
        raise ResultsError(f"unknown marks {marks!r}; use one of {', '.join(MARKS)}")
    definition = load_suite(suite) if suite else None
    if reported is not None:
        if definition is not None:
            reported.require(definition.keys, suite)
        layout = [(r.key, r.title) for r in reported.rows]
        averages = [(a.name, list(a.benchmarks)) for a in reported.averages]
    else:
        layout, averages = suite_layout(definition or DEFAULT_SUITE)
    keys = [k for k, _ in layout]
    columns: list[Column] = []
    scores: list[dict[str, float | None]] = []
    printed: list[dict[str, float]] = []
    cells: list[dict[str, Cell]] = []
    notes: list[str] = []
    if reported is not None:
        for m in reported.models:
            columns.append(Column(m.name, "reported", m.training_tokens, highlight=m.name == reported.subject))
            scores.append({r.key: r.scores[m.name] for r in reported.rows})
            printed.append({a.name: a.printed[m.name] for a in reported.averages if a.printed is not None})
            cells.append({})
    if models is not None or reported is None:
        if store is None:
            raise ValueError("measured columns need a store")
        measured = _measured(store, models, keys, suite, pick, " (measured)" if reported is not None else "",
                             candidates)
        columns += measured[0]
        scores += measured[1]
        printed += [{} for _ in measured[0]]
        notes += measured[2]
        cells += measured[3]
    rows = [Row("Training tokens", "training_tokens", "tokens", [c.tokens for c in columns])]
    rows += [Row(title, key, "score", [s[key] for s in scores]) for key, title in layout]
    if averages:
        rows.append(Row("", "", "blank", [None] * len(columns)))
    for name, avg_keys in averages:
        rows.append(Row(name, name.lower().replace(" ", "_"), "average",
                        [_average(name, avg_keys, col, col_scores, col_printed.get(name), notes)
                         for col, col_scores, col_printed in zip(columns, scores, printed)]))
    for row in rows:
        row.marks = mark_row(row.values) if row.kind in ("score", "average") else [None] * len(columns)
    average_se = _average_stderr_note(averages, columns, cells)
    if average_se:
        notes.append(average_se)
    if marks == "significance":
        _mark_significance(store, definition, rows, cells, dict(averages), alpha)
        notes.append(f"Marks: bold is the best score and every score within noise of it, underlined the best of the "
                     f"rest likewise (paired test over the documents both runs scored: McNemar's test with "
                     f"continuity correction for 0/1 metrics, else the sign-flip test; averages over all their "
                     f"benchmarks' documents; else a z-test on the standard errors; each comparison at alpha "
                     f"{alpha:g}, not adjusted across the row); reported scores carry no uncertainty.")
    if any(v is None for row in rows if row.kind == "score" for v in row.values):
        notes.append("— marks a missing score; averages leave it out.")
    return Leaderboard(columns, rows, notes)


def _mark_significance(store: Store | None, definition: Suite | None, rows: list[Row],
                       cells: list[dict[str, Cell]], averages: dict[str, list[str]], alpha: float) -> None:
    """Replace the value marks of score and average rows by significance marks (results/marks.py); each benchmark's
    per-document values are loaded once, for its row and for the averages that contain it."""
    from contextlib import nullcontext

    from suite.eval.paired_runs import BenchmarkSamples

    samples: dict[str, BenchmarkSamples] = {}
    with reading(store) if store is not None else nullcontext() as con:
        for row in (r for r in rows if r.kind == "score"):
            row_cells = [c.get(row.key, Cell(v if isinstance(v, float) else None))
                         for c, v in zip(cells, row.values)]
            runs = [c.run_id for c in row_cells if c.run_id]
            if definition is not None and con is not None and row.key in definition.keys and runs:
                samples[row.key] = BenchmarkSamples.load(con, definition.get(row.key), runs)
                test = paired_test(samples[row.key], alpha)
            else:
                test = stderr_test(alpha)
            row.marks = significance_marks(row_cells, test)
    for row in (r for r in rows if r.kind == "average"):
        keys = averages[row.label]
        row_cells = [Cell(v if isinstance(v, float) else None, mean_stderr([c[k].stderr if k in c else None
                                                                            for k in keys]),
                          parts=tuple(c[k].run_id if k in c else None for k in keys))
                     for v, c in zip(row.values, cells)]
        found = [samples[k] for k in keys] if all(k in samples for k in keys) else []
        row.marks = significance_marks(row_cells, average_test(found, alpha))


def _average_stderr_note(averages: list[tuple[str, list[str]]], columns: list[Column],
                         cells: list[dict[str, Cell]]) -> str | None:
    """The standard error of each measured column's averages: sqrt(sum of its benchmarks' squared standard
    errors) / k, the benchmarks taken as independent samples."""
    parts = []
    for name, keys in averages:
        shown = []
        for column, c in zip(columns, cells):
            se = mean_stderr([c[k].stderr if k in c else None for k in keys])
            if column.source == "measured" and se is not None:
                shown.append(f"{column.label} ±{se:.2f}")
        if shown:
            parts.append(f"{name}: {', '.join(shown)}")
    if not parts:
        return None
    return ("Standard errors of the averages (points; sqrt of the sum of the benchmarks' squared standard errors, "
            "over k): " + "; ".join(parts) + ".")
