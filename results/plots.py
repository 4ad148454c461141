"""Plots of stored results (matplotlib, PNG): a training run's benchmark curves, and a model against a card.

`plot_run` draws, per benchmark, the picked score of every checkpoint of a training run against its step, with the
lm-eval stderr as a band and training tokens on a second x axis; merged models built from the run's checkpoints are
drawn as a dashed level with their parents marked. `plot_compare` draws grouped bars: the reported models of a card
next to one measured model (with stderr whiskers). Figures are built without pyplot (no GUI backend, no global state)
and written atomically.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from pandas import DataFrame

from growth.foundation.atomic import write_bytes
from results.leaderboard import suite_layout
from results.measured import picked_scores
from results.reported_scores import ReportedSet
from suite.store import Store
from suite.store.queries import ResultsError, merged_children, reading, resolve_one, run_checkpoints


def _save(fig: Any, out: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return write_bytes(out, buf.getvalue())


def plot_run(store: Store, run: str, out: str | Path, *, suite: str | None = "openseek-mid-v1",
             pick: str = "latest", benchmarks: list[str] | None = None) -> Path:
    """One panel per benchmark: score vs step (tokens on top), stderr band, merged models as dashed levels."""
    from matplotlib.figure import Figure

    with reading(store) as con:
        models = run_checkpoints(con, run)
        ids = {m["model_id"] for m in models}
        merged = merged_children(con, ids)
        df = DataFrame(picked_scores(con, sorted(ids | {m["model_id"] for m in merged}), suite=suite, pick=pick))
    if df.empty:
        raise ResultsError(f"training run {run!r} has {len(models)} checkpoints but no finished evaluation runs"
                           f"{' in suite ' + suite if suite else ''}; run `growbench sweep` on its checkpoints")
    present = list(dict.fromkeys(df["benchmark"]))
    order = [k for k, _ in suite_layout(suite)[0]] if suite else []
    keys = benchmarks or [k for k in order if k in present] + [k for k in present if k not in order]
    ratios = [m["tokens"] / m["step"] for m in models if m["step"] and m["tokens"]]
    per_step = sorted(ratios)[len(ratios) // 2] if ratios else None
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    height = 3.6 * rows + 1.0
    fig = Figure(figsize=(4.2 * cols, height))
    # Fixed margins (inches / height): an automatic layout engine measures every tick label, seconds per figure.
    fig.subplots_adjust(left=0.06 if cols > 2 else 0.12, right=0.98, bottom=0.6 / height, top=1 - 1.3 / height,
                        wspace=0.3, hspace=0.75)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        points = df[(df["benchmark"] == key) & df["model_id"].isin(ids)].sort_values("step")
        err = points["stderr"].fillna(0.0)
        ax.plot(points["step"], points["value"], marker="o", ms=3, label="checkpoints")
        ax.fill_between(points["step"], points["value"] - err, points["value"] + err, alpha=0.25, label="± stderr")
        for i, m in enumerate(merged):
            row = df[(df["benchmark"] == key) & (df["model_id"] == m["model_id"])]
            if row.empty:
                continue
            color = f"C{i + 1}"
            ax.axhline(float(row["value"].iloc[0]), ls="--", color=color, label=f"merged: {m['name']}")
            parents = points[points["model_id"].isin(json.loads(m["parents"] or "[]"))]
            ax.scatter(parents["step"], parents["value"], marker="D", s=30, color=color, zorder=3)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.set_ylabel("score")
        ax.grid(alpha=0.3)
        if per_step:
            top = ax.secondary_xaxis("top", functions=(lambda s: s * per_step / 1e9, lambda t: t * 1e9 / per_step))
            top.set_xlabel("tokens (B)")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"training run {run} ({pick} run per checkpoint)", y=1 - 0.3 / height)
    return _save(fig, out)


def plot_compare(store: Store, model: str, reported: ReportedSet, out: str | Path, *,
                 suite: str | None = "openseek-mid-v1", pick: str = "latest") -> Path:
    """Grouped bars per benchmark: every reported model of the card, then the measured model with stderr."""
    from matplotlib.figure import Figure

    with reading(store) as con:
        target = resolve_one(con, model)
        measured = {r["benchmark"]: r for r in
                    picked_scores(con, [target["model_id"]], suite=suite, pick=pick)}
    if not measured:
        raise ResultsError(f"{target['name']} has no finished evaluation runs{' in suite ' + suite if suite else ''}")
    keys = [r.key for r in reported.rows]
    series = [(m.name, [reported.row(k).scores[m.name] for k in keys], None) for m in reported.models]
    series.append((f"{target['name']} (measured)", [measured[k]["value"] if k in measured else None for k in keys],
                   [measured[k]["stderr"] if k in measured else None for k in keys]))
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(10.0, 1.1 * len(keys)), 5.2))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.3, top=0.8)
    ax = fig.subplots()
    for i, (name, values, errs) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        yerr = [0.0 if e is None else e for e, v in zip(errs, values) if v is not None] if errs else None
        ax.bar(xs, ys, width, label=name, yerr=yerr, capsize=2 if errs else 0,
               edgecolor="black" if errs else None, hatch="//" if errs else None)
    ax.set_xticks(range(len(keys)), [reported.row(k).title for k in keys], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("score")
    ax.set_title(f"{target['name']} vs {reported.title}", pad=28)
    ax.legend(fontsize=7, ncols=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)
