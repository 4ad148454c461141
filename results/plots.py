"""Plots of stored results (matplotlib): a training run's benchmark curves, its loss and lr, and a model against a card.

`run_figure` draws, per benchmark (titled by its display name, the y axis naming its metric in %), the picked score
of every checkpoint of a training run against its step, with the lm-eval stderr as a band and training tokens on a
second x axis; the seed and grown model the run started from are dotted levels and merged models built from its
checkpoints dashed ones (each with its stderr band), the checkpoints a merge used marked, one legend for all.
`training_figure` draws loss and learning rate per step from the run's metrics.jsonl, with the checkpoints marked.
`compare_figure` draws grouped bars: the reported models of a card and other measured models next to one measured
model (measured ones with stderr whiskers), on a 'score (points, 0-100)' axis. Token axes read 32K, 1.5M, 2T, never 0.00004 B. Figures are built
without pyplot (no GUI backend, no global state); `plot_*` write them as PNG atomically, `svg` inlines them in the
report page (results/report.py).
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

from pandas import DataFrame

from growth.foundation.atomic import write_bytes
from results.leaderboard import format_tokens, suite_layout
from results.measured import picked_scores
from results.reported_scores import ReportedSet
from suite.eval.benchmarks import DEFAULT_SUITE, load_suite
from suite.store import Store
from suite.store.queries import ResultsError, merged_children, reading, resolve_one, run_checkpoints


def _save(fig: Any, out: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return write_bytes(out, buf.getvalue())


def svg(fig: Any) -> str:
    """The figure as an inline `<svg>` element: text kept as text (searchable, small), stable ids, and no RDF
    metadata block (its vocabulary URLs are noise in a page that must reference nothing)."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "growbench"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def _tokens_axis(ax: Any, per_step: float) -> None:
    """Training tokens on a second x axis above the step axis, in K/M/B/T."""
    from matplotlib.ticker import FuncFormatter

    top = ax.secondary_xaxis("top", functions=(lambda s: s * per_step, lambda t: t / per_step))
    top.xaxis.set_major_formatter(FuncFormatter(lambda t, _: format_tokens(t) if t > 0 else "0"))
    top.set_xlabel("tokens")


def plot_run(store: Store, run: str, out: str | Path, *, suite: str | None = DEFAULT_SUITE,
             pick: str = "latest", benchmarks: list[str] | None = None) -> Path:
    """`run_figure` as a PNG file."""
    return _save(run_figure(store, run, suite=suite, pick=pick, benchmarks=benchmarks), out)


UNITS = {"acc": "accuracy (%)", "acc_norm": "accuracy, length-normalised (%)", "exact_match": "exact match (%)",
         "pass_at_1": "pass@1 (%)", "math_verify": "answers verified correct (%)"}
"""The y axis of a benchmark's panel, by its headline metric (every score is shown x100, as the leaderboard does)."""


def axis_label(metric: str | None) -> str:
    """'accuracy (%)' and the like; an unknown metric reads 'METRIC (points, 0-100)'."""
    return UNITS.get(metric or "", f"{metric or 'score'} (points, 0-100)")


def _references(con: Any, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The models the run grew from, nearest first (the grown model, then its seed), each at most once."""
    from suite.store.queries import records

    out: list[dict[str, Any]] = []
    wanted = {p for m in models for p in json.loads(m["parents"] or "[]")}
    while wanted:
        rows = records(con.execute("SELECT * FROM models WHERE model_id IN (SELECT unnest(?::VARCHAR[]))",
                                   [sorted(wanted)]))
        out += rows
        seen = {m["model_id"] for m in out}
        wanted = {p for m in rows for p in json.loads(m["parents"] or "[]")} - seen
    return out


def run_figure(store: Store, run: str, *, suite: str | None = DEFAULT_SUITE, pick: str = "latest",
               benchmarks: list[str] | None = None) -> Any:
    """One panel per benchmark, titled by its display name, its metric on the y axis: score vs step (tokens on
    top) with a stderr band, the models the run grew from (seed, grown) and merged models as levels with their
    stderr bands, the checkpoints a merge used marked; one legend for all panels."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    with reading(store) as con:
        models = run_checkpoints(con, run)
        ids = {m["model_id"] for m in models}
        merged = merged_children(con, ids)
        references = _references(con, models)
        wanted = ids | {m["model_id"] for m in merged + references}
        df = DataFrame(picked_scores(con, sorted(wanted), suite=suite, pick=pick))
    if df.empty or not df["model_id"].isin(ids).any():
        raise ResultsError(f"training run {run!r} has {len(models)} checkpoints but no finished evaluation runs"
                           f"{' in suite ' + suite if suite else ''}; run `growbench sweep` on its checkpoints")
    present = list(dict.fromkeys(df[df["model_id"].isin(ids)]["benchmark"]))
    definition = load_suite(suite) if suite else None
    layout = dict(suite_layout(definition)[0]) if definition else {}
    keys = benchmarks or [k for k in layout if k in present] + [k for k in present if k not in layout]
    ratios = [m["tokens"] / m["step"] for m in models if m["step"] and m["tokens"]]
    per_step = sorted(ratios)[len(ratios) // 2] if ratios else None
    cols = min(3 if len(keys) > 6 else 2, len(keys))
    rows = math.ceil(len(keys) / cols)
    legend_rows = 2
    height = 3.4 * rows + 1.0 + 0.3 * legend_rows
    fig = Figure(figsize=(5.0 * cols, height))
    # Fixed margins (inches / height): an automatic layout engine measures every tick label, seconds per figure.
    fig.subplots_adjust(left=0.1 if cols > 1 else 0.16, right=0.98, bottom=(0.6 + 0.3 * legend_rows) / height,
                        top=1 - 1.2 / height, wspace=0.28, hspace=0.85)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    greys = ("0.1", "0.5", "0.7")
    levels = [(m, greys[min(i, 2)], ":", f"{m['kind'] or 'model'}: {m['name']}")
              for i, m in enumerate(references[::-1])]
    levels += [(m, f"C{i + 1}", "--", f"merged: {m['name']}") for i, m in enumerate(merged)]
    handles = [Line2D([], [], marker="o", ms=4, color="C0", label=f"checkpoints of {run}"),
               Patch(color="C0", alpha=0.25, label="± 1 standard error")]
    handles += [Line2D([], [], ls=style, color=color, label=label) for _, color, style, label in levels]
    handles += [Line2D([], [], ls="", marker="D", ms=5, color=f"C{i + 1}",
                       label=f"checkpoint merged into {m['name']}") for i, m in enumerate(merged)]
    for ax, key in zip(axes, keys):
        points = df[(df["benchmark"] == key) & df["model_id"].isin(ids)].sort_values("step")
        err = points["stderr"].fillna(0.0)
        ax.plot(points["step"], points["value"], marker="o", ms=3, color="C0")
        ax.fill_between(points["step"], points["value"] - err, points["value"] + err, alpha=0.25, color="C0")
        for m, color, style, _ in levels:
            row = df[(df["benchmark"] == key) & (df["model_id"] == m["model_id"])]
            if row.empty:
                continue
            value, se = float(row["value"].iloc[0]), row["stderr"].iloc[0]
            ax.axhline(value, ls=style, color=color, lw=1.2)
            if se is not None and not math.isnan(se):
                ax.axhspan(value - se, value + se, color=color, alpha=0.08, lw=0)
        for i, m in enumerate(merged):
            parents = points[points["model_id"].isin(json.loads(m["parents"] or "[]"))]
            ax.scatter(parents["step"], parents["value"], marker="D", s=30, color=f"C{i + 1}", zorder=3)
        ax.set_title(layout.get(key, key), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(axis_label(definition.get(key).metric if definition and key in definition.keys else None),
                      fontsize=9)
        ax.grid(alpha=0.3)
        if per_step:
            _tokens_axis(ax, per_step)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.legend(handles=handles, loc="lower center", ncols=min(3, len(handles)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.1 / height))
    fig.suptitle(f"training run {run}: scores by step ({pick} run per model)", y=1 - 0.25 / height)
    return fig


def training_figure(metrics: list[dict[str, Any]], *, run: str, checkpoints: list[int] = (),
                    merged: list[int] = ()) -> Any:
    """Loss and learning rate per logged step (tokens on top); dotted lines at the checkpoints, solid at those a
    merge used, red at a data stage change. `metrics` are metrics.jsonl rows (training/metrics.py)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if not metrics:
        raise ResultsError(f"training run {run!r} has no logged steps (metrics.jsonl is empty or missing)")
    steps = [r["step"] for r in metrics]
    per_step = metrics[-1]["tokens"] / metrics[-1]["step"] if metrics[-1].get("tokens") else None
    fig = Figure(figsize=(10.0, 4.0))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.74, wspace=0.22)
    loss_ax, lr_ax = fig.subplots(1, 2)
    for ax, key, label in ((loss_ax, "loss", "training loss"), (lr_ax, "lr", "learning rate")):
        ax.plot(steps, [r[key] for r in metrics], lw=1.2)
        for step in checkpoints:
            ax.axvline(step, color="grey", ls=":" if step not in merged else "-", lw=0.8 if step not in merged else 1.4,
                       alpha=0.7)
        ax.set_ylabel(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if per_step:
            _tokens_axis(ax, per_step)
    lr_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1e}" if v else "0"))
    stages = [(r["step"], r["stage"]) for i, r in enumerate(metrics) if i == 0 or r["stage"] != metrics[i - 1]["stage"]]
    for step, stage in stages[1:]:
        loss_ax.axvline(step, color="C3", lw=0.8, alpha=0.6)
        loss_ax.annotate(stage, (step, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                         textcoords="offset points", fontsize=7, color="C3")
    fig.suptitle(f"training run {run}: checkpoints dotted, those merged solid", y=0.97)
    return fig


def plot_compare(store: Store, model: str, reported: ReportedSet | None, out: str | Path, *,
                 others: list[str] = (), suite: str | None = DEFAULT_SUITE, pick: str = "latest") -> Path:
    """`compare_figure` as a PNG file."""
    return _save(compare_figure(store, model, reported, others=others, suite=suite, pick=pick), out)


def compare_figure(store: Store, model: str, reported: ReportedSet | None, *, others: list[str] = (),
                   suite: str | None = DEFAULT_SUITE, pick: str = "latest") -> Any:
    """Grouped bars per benchmark: every model of a reported set (its rows), then other measured models and the
    model itself with stderr whiskers (without a reported set: the suite's benchmarks the model was scored on).
    A reported set that shares no benchmark with the model is refused rather than drawn empty."""
    from matplotlib.figure import Figure

    with reading(store) as con:
        targets = [resolve_one(con, name) for name in [*others, model]]
        measured = [{r["benchmark"]: r for r in picked_scores(con, [t["model_id"]], suite=suite, pick=pick)}
                    for t in targets]
    target, own = targets[-1], measured[-1]
    if not own:
        raise ResultsError(f"{target['name']} has no finished evaluation runs{' in suite ' + suite if suite else ''}")
    if reported is not None:
        keys, titles = [r.key for r in reported.rows], {r.key: r.title for r in reported.rows}
        if not set(keys) & set(own):
            raise ResultsError(f"{target['name']} (suite {suite}) and the reported set {reported.name} (suite "
                               f"{reported.suite}) share no benchmark; compare with measured models (--models)")
        series = [(m.name, [reported.row(k).scores[m.name] for k in keys], None) for m in reported.models]
    else:
        titles = dict(suite_layout(suite)[0]) if suite else {}
        keys = [k for k in titles if k in own] + [k for k in own if k not in titles]
        series = []
    for t, scores in zip(targets, measured):
        series.append((f"{t['name']} (measured)", [scores[k]["value"] if k in scores else None for k in keys],
                       [scores[k]["stderr"] if k in scores else None for k in keys]))
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
    ax.set_xticks(range(len(keys)), [titles.get(k, k) for k in keys], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("score (points, 0-100)")
    against = [reported.title] if reported is not None else []
    ax.set_title(f"{target['name']} vs {', '.join(against + [t['name'] for t in targets[:-1]])}", pad=28)
    ax.legend(fontsize=7, ncols=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    return fig
