"""The report page: one self-contained HTML file that answers a researcher's questions about a training run.

    growbench report runs/tiny/report/report.html --run tiny-train

In order: the card-style leaderboard of every evaluated model of the run's lineage with a legend for its marks
(results/leaderboard.py; significance marks by default, as the pipeline's console); did the merge help, the final
model paired against the seed, the best single checkpoint and each merge parent as one family of tests
(results/helped.py); the growth, plan steps with parameters before and after, the function-preservation check
document by document and what each stage scored (results/growth_check.py); the selection, each role's checkpoint
with the scores and paired tests behind it and the reason in plain words (results/selection.py); score-vs-step
plots with benchmark names, units, one legend, the seed and grown levels and stderr bands, and the training loss and
lr from metrics.jsonl (results/plots.py); the documents and standard errors behind every score; the lineage seed ->
grown -> checkpoints -> merged with the merge weights; and the regression table of each merged model
(results/regress.py) against the reported card when the suites match, else against the run's last checkpoint.
Numbers read as on the console (results/numbers.py). Wide tables scroll inside their card, so the page reads at
900 px as at 1400 px. The page needs no network: CSS is inline, plots are inline SVG, there is no script, and a
Content-Security-Policy forbids every fetch. It is written atomically.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from growth.foundation.atomic import write_text
from results.leaderboard import build_leaderboard, format_tokens
from results.leaderboard_format import to_html
from results.measured import picked_scores
from results.numbers import interval, p_value, signed
from results.regress import RegressReport, regress
from results.reported_scores import ReportedSet, load_reported
from suite.eval.significance import level
from suite.store import Store
from suite.store.queries import ResultsError, find_models, one_suite, reading, training_run

esc = html.escape


@dataclass(frozen=True)
class ReportOptions:
    run: str | None = None
    """Training run: its id (models.training_run) or its folder; None: the most recently registered run."""
    suite: str | None = None
    """Suite whose runs count; None: the suite most of the run's checkpoints were evaluated in."""
    reported: str | None = None
    """Reported set shown beside the measured models and used as the regression reference, when its suite matches."""
    pick: str = "latest"
    """Which finished run counts per model and benchmark: latest or best."""
    abs_tol: float = 1.0
    """Regression check: always accept |delta| up to this many points."""
    z: float = 2.0
    """Regression check: also accept |delta| up to z x stderr."""
    marks: str = "significance"
    """Leaderboard marks: significance (as the pipeline's console) or value (the card's); a legend explains them."""


@dataclass
class Lineage:
    """A training run's family: `ancestors` (oldest generation first: seed, then grown), its checkpoints by
    step, and the merged models built from them."""

    run: str
    ancestors: list[list[dict[str, Any]]]
    checkpoints: list[dict[str, Any]]
    merged: list[dict[str, Any]]
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # merged id -> {parent id: weight}

    def models(self) -> list[dict[str, Any]]:
        return [m for generation in self.ancestors for m in generation] + self.checkpoints + self.merged


def _clean(model: dict[str, Any]) -> dict[str, Any]:
    """A store row with pandas' NaN turned back into None and JSON columns parsed."""
    row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in model.items()}
    for key in ("parents", "merge", "growth"):
        row[key] = json.loads(row[key]) if isinstance(row.get(key), str) else row.get(key)
    row["parents"] = row["parents"] or []
    return row


def find_lineage(store: Store, run: str | None) -> Lineage:
    """The run's checkpoints, their ancestors and the merges built from them (every model of the store is read
    once; stores hold thousands of models, not millions)."""
    if run is not None:
        run = training_run(store, run)[0]  # an id or a folder; one line with close matches when unknown
    models = [_clean(m) for m in find_models(store, "*")]
    runs = {m["training_run"]: m["registered_at"] for m in models if m["training_run"]}
    if not runs:
        raise ResultsError(f"no training run in the results database {store.path}; run `growbench pipeline` or "
                           "`growbench train` and `growbench sweep` first")
    run = run or max(runs, key=lambda r: runs[r])
    by_id = {m["model_id"]: m for m in models}
    checkpoints = sorted((m for m in models if m["training_run"] == run and m["step"] is not None),
                         key=lambda m: m["step"])
    ids = {m["model_id"] for m in checkpoints}
    ancestors, seen = [], set(ids)
    generation = {p for m in checkpoints for p in m["parents"]} - seen
    while generation:
        known = [by_id[p] for p in sorted(generation) if p in by_id]
        if not known:
            break
        ancestors.insert(0, known)
        seen |= generation
        generation = {p for m in known for p in m["parents"]} - seen
    for older, younger in zip(ancestors, ancestors[1:]):  # a grow's intermediate stages (width-expanded) beside it
        stages = [m for m in models if m["kind"] == "grown" and m["model_id"] not in seen
                  and m["parents"] and set(m["parents"]) <= {o["model_id"] for o in older}]
        younger[:0] = stages
        seen |= {m["model_id"] for m in stages}
    merged = [m for m in models if m["kind"] == "merged" and ids & set(m["parents"])]
    weights = {m["model_id"]: {s["fingerprint"]: s.get("weight") for s in (m["merge"] or {}).get("models", [])}
               for m in merged}
    return Lineage(run, ancestors, checkpoints, merged, weights)


def _suite_of(store: Store, lineage: Lineage) -> str:
    with reading(store) as con:
        return one_suite(con, None, [m["model_id"] for m in lineage.checkpoints],
                         whose=f"the checkpoints of training run {lineage.run!r}")


# --- sections ----------------------------------------------------------------------------------------------------

def _figure(make: Any) -> str:
    """An inline SVG plot, or the reason there is none."""
    from results.plots import svg

    try:
        return f'<div class="plot">{svg(make())}</div>'
    except ResultsError as e:
        return f'<p class="note">{esc(str(e))}</p>'


def _training_section(lineage: Lineage) -> str:
    from results.plots import training_figure
    from training.metrics import FILENAME, read_metrics

    if not lineage.checkpoints:
        return '<p class="note">no checkpoints</p>'
    run_dir = Path(lineage.checkpoints[-1]["path"]).parent.parent
    metrics = read_metrics(run_dir)
    if not metrics:
        return f'<p class="note">no {FILENAME} in {esc(str(run_dir))} (the run folder moved or logged nothing)</p>'
    parents = {p for w in lineage.weights.values() for p in w}
    steps = [m["step"] for m in lineage.checkpoints]
    merged = [m["step"] for m in lineage.checkpoints if m["model_id"] in parents]
    last = metrics[-1]
    summary = (f'<p>{last["step"]:,} steps, {format_tokens(last["tokens"])} tokens; loss {metrics[0]["loss"]:.3f} '
               f'&rarr; {last["loss"]:.3f}; from <code>{esc(str(run_dir / FILENAME))}</code></p>')
    return summary + _figure(lambda: training_figure(metrics, run=lineage.run, checkpoints=steps, merged=merged))


def _node(m: dict[str, Any], weight: float | None = None, parents: str = "") -> str:
    facts = [m["kind"] or "model", f'id {m["model_id"][:10]}']
    if m["step"] is not None:
        facts.append(f'step {m["step"]:,}')
    if m["tokens"]:
        facts.append(f'{format_tokens(m["tokens"])} tokens')
    growth = m.get("growth") or {}
    if growth.get("num_parameters"):
        facts.append(f'plan {growth.get("plan_name")}: {growth["source"]["num_parameters"]:,} &rarr; '
                     f'{growth["num_parameters"]:,} parameters')
    marked = ' merged-parent' if weight is not None else ''
    badge = f'<span class="weight">weight {weight:g}</span>' if weight is not None else ''
    return (f'<div class="node{marked}"><b>{esc(m["name"] or m["model_id"][:10])}</b>{badge}'
            f'<small>{" · ".join(facts)}</small>{parents}</div>')


def _lineage_section(lineage: Lineage) -> str:
    names = {m["model_id"]: m["name"] for m in lineage.models()}
    used: dict[str, float] = {}
    for w in lineage.weights.values():
        for pid, weight in w.items():
            used[pid] = weight if weight is not None else float("nan")
    columns = [(" / ".join(sorted({m["kind"] or "model" for m in gen})), [_node(m) for m in gen])
               for gen in lineage.ancestors]
    columns.append((f"checkpoints ({lineage.run})", [_node(m, used.get(m["model_id"])) for m in lineage.checkpoints]))
    if lineage.merged:
        merged = []
        for m in lineage.merged:
            terms = " + ".join(f"{w:g} &times; {esc(names.get(pid) or pid[:10])}"
                               for pid, w in lineage.weights[m["model_id"]].items() if w is not None)
            merged.append(_node(m, parents=f'<small class="recipe">= {terms}</small>' if terms else ""))
        columns.append(("merged", merged))
    stages = '<div class="arrow">&rarr;</div>'.join(
        f'<div class="stage"><h3>{esc(title)}</h3>{"".join(nodes)}</div>' for title, nodes in columns)
    return f'<div class="lineage">{stages}</div>'


def _regress_table(report: RegressReport) -> str:
    def num(v: float | None, fmt: str = "{:.2f}") -> str:
        return "—" if v is None else fmt.format(v)

    rows = "".join(
        f'<tr class="{c.status}"><td>{esc(c.benchmark)}</td><td>{num(c.measured)}</td><td>{num(c.reference)}</td>'
        f'<td>{num(c.delta, "{:+.2f}")}</td><td>{num(c.stderr)}</td><td>{num(c.z)}</td><td>{num(c.threshold)}</td>'
        f'<td class="status">{c.status}</td><td class="wrap">{esc(c.settings)}</td></tr>' for c in report.results)
    verdict = "all within tolerance" if report.passed else "regression: " + ", ".join(
        f"{c.benchmark} ({c.delta:+.2f})" for c in report.results if c.status == "fail")
    return (f'<h3>{esc(report.model)} vs {esc(report.against)}</h3>'
            f'<p>|delta| &le; max({report.abs_tol:g}, {report.z:g} &times; stderr) passes; '
            f'<b class="{"pass" if report.passed else "fail"}">{esc(verdict)}</b></p>'
            '<div class="scroll"><table><thead><tr><th>benchmark</th><th>measured</th><th>reference</th>'
            '<th>delta</th><th>stderr</th><th>z</th><th>threshold</th><th>status</th><th>settings</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></div>')


def _regress_section(store: Store, lineage: Lineage, suite: str, reported: ReportedSet | None,
                     options: ReportOptions) -> str:
    subjects = lineage.merged or lineage.checkpoints[-1:]
    if reported is not None:
        against = f"reported:{reported.name}"
    elif lineage.merged and lineage.checkpoints:
        against = f"model:{lineage.checkpoints[-1]['model_id']}"
    else:
        return '<p class="note">no merged model and no reported set for this suite: nothing to check</p>'
    parts = []
    for m in subjects:
        try:
            rep = regress(store, m["model_id"], against, abs_tol=options.abs_tol, z=options.z, pick=options.pick,
                          suite=suite, allow_mismatch=True)
        except ResultsError as e:
            parts.append(f'<p class="note">{esc(m["name"] or "")}: {esc(str(e))}</p>')
            continue
        parts.append(_regress_table(rep))
        if rep.mismatches:
            parts.append(f'<p class="note">compared despite unlike settings: {esc("; ".join(rep.mismatches))}</p>')
    return "".join(parts)


def _precision_section(store: Store, lineage: Lineage, suite: str, evaluated: set[str], options: ReportOptions) -> str:
    """The documents and standard error behind every score: how far apart two columns must be to mean anything."""
    from results.measured import precision_lines

    models = [m for m in lineage.models() if m["model_id"] in evaluated]
    with reading(store) as con:
        lines = precision_lines(con, models, suite, options.pick)
    return f"<h3>Documents and standard error (points) per model</h3><pre>{esc(chr(10).join(lines))}</pre>"


def _compare_table(report: Any, baseline: str) -> str:
    """One paired comparison, a row per benchmark and the average."""
    rows = "".join(
        f'<tr class="{r.verdict.split()[0]}"><td>{esc(r.title if r.benchmark != "average" else "average")}</td>'
        f"<td>{r.a:.2f}</td><td>{r.b:.2f}</td><td>{signed(r.difference)}</td><td>{r.stderr:.2f}</td>"
        f"<td>{interval(r.ci_low, r.ci_high)}</td><td>{p_value(r.p_value)}</td><td>{p_value(r.p_adjusted)}</td>"
        f"<td>{esc(r.test)}</td><td>{r.n}</td><td class=\"verdict\">{esc(r.verdict)}</td></tr>"
        for r in report.family_rows())
    skipped = "".join(f'<p class="note">{esc(k)}: not compared ({esc(why)})</p>' for k, why in report.skipped.items())
    return ('<div class="scroll"><table><thead><tr><th>benchmark</th><th>final</th>'
            f"<th>{esc(baseline)}</th><th>difference</th><th>standard error</th><th>{level(report.alpha)} CI</th>"
            "<th>p</th><th>adjusted p</th><th>test</th><th>documents</th><th>verdict</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>{skipped}")


def _help_section(store: Store, lineage: Lineage, suite: str, evaluated: set[str], options: ReportOptions) -> str:
    """Did the merge help? The final model paired with the seed, the best single checkpoint and each merge parent,
    all rows one family (results/helped.py): a summary grid, then each comparison in full."""
    from results.helped import did_it_help
    from suite.eval.multiplicity import describe

    final = (lineage.merged or lineage.checkpoints or [None])[-1]
    if final is None or final["model_id"] not in evaluated:
        return '<p class="note">the final model has no finished evaluation runs in this suite</p>'
    seed = lineage.ancestors[0][0] if lineage.ancestors and lineage.ancestors[0] else None
    try:
        helped = did_it_help(store, final["model_id"], suite=suite, pick=options.pick,
                             seed=seed["model_id"] if seed and seed["model_id"] in evaluated else None)
    except ResultsError as e:
        return f'<p class="note">{esc(str(e))}</p>'
    first = helped.reports[0]
    titles = {r.benchmark: r.title for report in helped.reports for r in report.rows}
    keys, grid_rows = helped.grid()  # the console prints the same grid
    head = "".join(f"<th>{esc(titles.get(k, k))}</th>" for k in keys)
    grid = []
    for (label, cells), base in zip(grid_rows, helped.baselines):
        tds = "".join(f'<td class="{c.split()[-1]}">{esc(c.split()[0])} <small>{esc(c.split()[-1])}</small></td>'
                      if c != "—" else "<td>—</td>" for c in cells)
        grid.append(f"<tr><td>{esc(base.name)} <small>({esc(', '.join(base.roles))})</small></td>{tds}</tr>")
    details = "".join(f"<details><summary>{esc(helped.final)} vs {esc(base.name)} "
                      f"({esc(', '.join(base.roles))})</summary>{_compare_table(report, base.name)}</details>"
                      for base, report in zip(helped.baselines, helped.reports))
    methods = "".join(f"<li><b>{esc(t)}</b>: {esc(how)}</li>"
                      for t, how in sorted({t: h for r in helped.reports for t, h in r.to_dict()["methods"].items()}
                                           .items()))
    best = f"<p>Best single checkpoint: {esc(helped.best_rule)}.</p>" if helped.best_rule else ""
    return (f"<p>{esc(helped.final)} paired document by document with each model below: the difference "
            f"{esc(helped.final)} − model in points, each benchmark and their unweighted average. Verdicts at alpha "
            f"{first.alpha:g}, {esc(describe(first.adjust, helped.tests))} together (every cell of the grid is one "
            f"test of one family); each interval is its own test's, unadjusted.</p>{best}"
            f'<p class="legend"><span class="better">+1.00 better</span>: adjusted p &lt; alpha, the final model '
            f'is higher; <span class="worse">−1.00 worse</span>: it is lower; <span>+1.00 ≈</span>: no detectable '
            f"difference (the gap is within noise).</p>"
            f'<div class="scroll"><table class="grid"><thead><tr><th>against</th>{head}</tr></thead>'
            f'<tbody>{"".join(grid)}</tbody></table></div>{details}<ul class="note">{methods}</ul>')


def _growth_section(store: Store, lineage: Lineage, suite: str, options: ReportOptions) -> str:
    """The plan's steps with the parameters before and after each, the function-preservation check of the stage
    that claims it (every score and per-document value equal to the seed's), and what each stage scored."""
    from results.growth_check import grown_from, growth_steps, preservation

    seed = lineage.ancestors[0][0] if lineage.ancestors and lineage.ancestors[0] else None
    stages = grown_from(store, seed["model_id"]) if seed else []
    if not stages:
        return '<p class="note">no model of this run was grown (its first ancestor has no growth.json children)</p>'
    grown = stages[-1]
    steps = growth_steps(grown["growth"])
    plan = grown["growth"].get("plan") or {}
    verified = any(st.verified is not None for st in steps)  # the --verify column, only when a check ran
    rows = "".join(
        f"<tr><td>{i}</td><td class=\"wrap\">{esc(st.op)}</td><td class=\"wrap\">{esc(st.settings)}</td>"
        f"<td>{'—' if st.before is None else f'{st.before:,}'}</td>"
        f"<td>{'—' if st.after is None else f'{st.after:,}'}</td>"
        f"<td>{'—' if st.snr_db is None else f'{st.snr_db:.1f}'}</td><td>{'yes' if st.preserving else 'no'}</td>"
        f"<td class=\"wrap\">{esc(st.stage or '')}</td>"
        + (f"<td>{'—' if st.verified is None else esc(_verified(st.verified))}</td>" if verified else "") + "</tr>"
        for i, st in enumerate(steps, start=1))
    counts = " &rarr; ".join([f"{esc(seed['name'])} {grown['growth']['source']['num_parameters']:,}"]
                             + [f"{esc(m['name'])} {m['growth']['num_parameters']:,}" for m in stages])
    parts = [f"<p>Plan <b>{esc(plan.get('name') or grown['growth'].get('plan_name') or '?')}</b>: "
             f"{esc(plan.get('description', ''))}</p><p>Parameters: {counts}.</p>"
             '<div class="scroll"><table><thead><tr><th>step</th><th class="text">operator</th>'
             '<th class="text">settings</th><th>parameters before</th><th>after</th><th>measured SNR (dB)</th>'
             '<th>preserves the function</th><th class="text">ends stage</th>'
             f'{"<th>--verify: max |Δ logit|</th>" if verified else ""}</tr></thead>'
             f"<tbody>{rows}</tbody></table></div>"
             '<p class="note">measured SNR: the mean over the noised weight matrices of signal over added noise '
             "power; a step that preserves the function leaves every logit unchanged (HyperCloning's noise is "
             "placed so that it cancels).</p>"]
    claimed = [m for m in stages if all(st.preserving for st in growth_steps(m["growth"]))]
    if claimed and seed:
        stage = claimed[-1]
        try:
            check = preservation(store, stage["model_id"], seed["model_id"], suite=suite, pick=options.pick)
        except ResultsError as e:
            parts.append(f'<p class="note">{esc(str(e))}</p>')
        else:
            verdict = "pass" if not check.differ else "fail"
            parts.append(f'<h3>Function-preservation check</h3><p><b class="{verdict}">'
                         f"{esc(check.sentence([st.op for st in growth_steps(stage['growth'])]))}</b></p>")
            rows = "".join(f'<tr class="{"pass" if r.equal else "fail"}"><td>{esc(r.benchmark)}</td>'
                           f"<td>{r.seed:.2f}</td><td>{r.model:.2f}</td><td>{r.documents}</td><td>{r.differing}</td>"
                           f'<td class="status">{"equal" if r.equal else "differs"}</td></tr>' for r in check.rows)
            parts.append(f'<div class="scroll"><table><thead><tr><th>benchmark</th><th>{esc(check.seed)}</th>'
                         f"<th>{esc(check.model)}</th><th>documents compared</th><th>documents that differ</th>"
                         f"<th>check</th></tr></thead><tbody>{rows}</tbody></table></div>")
    else:
        parts.append('<p class="note">no stage of this plan claims to preserve the function: nothing to check</p>')
    parts.append(_stage_scores(store, [seed, *stages, *lineage.checkpoints[:1]], suite, options))
    return "".join(parts)


def _verified(check: dict[str, Any]) -> str:
    return f"{check.get('max_abs', float('nan')):.2g}"


def _stage_scores(store: Store, models: list[dict[str, Any]], suite: str, options: ReportOptions) -> str:
    """What each stage scored: the seed, the grown stages and the first checkpoint, per benchmark (points)."""
    from suite.eval.benchmarks import load_suite

    with reading(store) as con:
        picked = picked_scores(con, [m["model_id"] for m in models], suite=suite, pick=options.pick,
                               columns=("model_id", "benchmark", "value"))
    values = {(r["model_id"], r["benchmark"]): r["value"] for r in picked}
    scored = [m for m in models if any(mid == m["model_id"] for mid, _ in values)]
    if not scored:
        return ""
    titles = dict((b.key, b.title) for b in load_suite(suite).benchmarks)
    keys = [k for k in titles if any((m["model_id"], k) in values for m in scored)]
    head = "".join(f"<th>{esc(m['name'])}</th>" for m in scored)
    rows = "".join(f"<tr><td>{esc(titles[k])}</td>"
                   + "".join("<td>—</td>" if (m["model_id"], k) not in values else
                             f"<td>{values[(m['model_id'], k)]:.2f}</td>" for m in scored) + "</tr>" for k in keys)
    return ("<h3>What each stage scored (points)</h3><p class=\"note\">The seed, each grown stage (before any "
            "training) and the run's first checkpoint.</p>"
            f'<div class="scroll"><table><thead><tr><th>benchmark</th>{head}</tr></thead><tbody>{rows}</tbody>'
            "</table></div>")


def _role_block(r: Any) -> str:
    """One anchors role: what it took and why in plain words, and the paired tests of the best free checkpoint
    against each other free one that decided it."""
    score = "" if r.score is None else f", {r.score:.2f} points (rank {r.rank} of {r.of})"
    weight = "" if r.weight is None else f", weight {r.weight:g}"
    rows = "".join(f'<tr class="{"pass" if t.beaten else ""}"><td>{esc(t.other)}</td>'
                   f"<td>{'—' if t.score is None else f'{t.score:.2f}'}</td>"
                   f"<td>{'—' if t.difference is None else signed(t.difference)}</td>"
                   f"<td>{'—' if t.p_value is None else p_value(t.p_value)}</td><td>{esc(t.test)}</td>"
                   f"<td>{'yes' if t.beaten else 'no: within noise'}</td></tr>" for t in r.tests)
    table = (f'<div class="scroll"><table><thead><tr><th>{esc(r.best or "best")} against</th><th>its score</th>'
             "<th>its lead (points)</th><th>p</th><th>test</th><th>beaten beyond noise?</th></tr></thead>"
             f"<tbody>{rows}</tbody></table></div>" if rows else "")
    return (f'<div class="role"><h4>{esc(r.role)} <small>({esc(r.metric)}{weight})</small>: '
            f"<b>{esc(r.chosen)}</b>{score}</h4><p>{esc(r.why)}</p>{table}</div>")


def _selection_section(lineage: Lineage) -> str:
    """For each merged model: the split its selector's scores rest on, those scores (points) beside what each
    candidate or trial became, and the rule behind each choice (results/selection.py)."""
    from results.selection import summarize

    parts = []
    for m in lineage.merged:
        recipe = (m["merge"] or {}).get("recipe")
        if not recipe:
            parts.append(f'<p class="note">{esc(m["name"] or "")}: its merge.json holds no recipe</p>')
            continue
        s = summarize(recipe)
        head = "".join(f"<th>{esc(c)}</th>" for c in s.columns)
        rows = "".join(f"<tr><td>{esc(label)}</td>"
                       + "".join(f"<td>{'—' if v is None else f'{v:.2f}'}</td>" for v in values)
                       + f'<td class="outcome">{esc(outcome)}</td></tr>' for label, values, outcome in s.rows)
        table = (f'<div class="scroll"><table><thead><tr><th>{"candidate" if s.strategy == "anchors" else "trial"}'
                 f'</th>{head}<th>became</th></tr></thead><tbody>{rows}</tbody></table></div>' if s.rows else "")
        choices = ("".join(_role_block(r) for r in s.roles) if s.roles else
                   "<ul>" + "".join(f"<li>{esc(c)}</li>" for c in s.choices) + "</ul>")
        parts.append(f"<h3>{esc(m['name'] or m['model_id'][:10])}: {esc(s.strategy)}</h3>"
                     f"<p>Selection used: {esc(s.split)}.</p>{table}{choices}")
    return "".join(parts) or '<p class="note">no merged model in this run</p>'


# --- the page ----------------------------------------------------------------------------------------------------

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #ffffff; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main, footer { max-width: 1280px; margin: 0 auto; padding: 16px 24px; }
header h1 { margin: 8px 0 4px; font-size: 24px; }
.sub { color: var(--muted); margin: 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px; margin: 14px 0 0; }
.facts div { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.facts dt { color: var(--muted); font-size: 12px; } .facts dd { margin: 0; font-weight: 600; word-break: break-all; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 4px 20px 16px;
               margin: 0 0 18px; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: var(--bg); white-space: normal; vertical-align: bottom; }
#leaderboard ul, .note { color: var(--muted); font-size: 13px; }
.plot svg { width: 100%; height: auto; }
.lineage { display: flex; align-items: flex-start; gap: 8px; overflow-x: auto; padding-bottom: 6px; }
.stage { min-width: 190px; } .stage h3 { color: var(--muted); text-transform: uppercase; font-size: 12px; }
.arrow { align-self: center; font-size: 22px; color: var(--muted); }
.node { border: 1px solid var(--line); border-radius: 8px; padding: 6px 10px; margin: 0 0 6px; background: var(--bg); }
.node b { display: block; } .node small { display: block; color: var(--muted); }
.node.merged-parent { border-color: var(--accent); box-shadow: inset 3px 0 0 var(--accent); }
.weight { float: right; color: var(--accent); font-size: 12px; font-weight: 600; }
.recipe { margin-top: 4px; }
td.outcome { text-align: left; white-space: normal; min-width: 200px; }
td.wrap, th.text { text-align: left; white-space: normal; }
.grid td:first-child { white-space: normal; }
.legend { font-size: 13px; background: var(--bg); border: 1px solid var(--line); border-radius: 6px;
          padding: 6px 10px; }
td.better, tr.better td.verdict, .legend .better { color: #1a7f37; font-weight: 600; }
td.worse, tr.worse td.verdict, .legend .worse { color: #cf222e; font-weight: 600; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; }
.role { border-left: 3px solid var(--line); padding: 0 0 0 12px; margin: 10px 0; }
.role h4 { margin: 8px 0 4px; }
pre { overflow-x: auto; max-width: 100%; }
tr.fail td, b.fail { color: #cf222e; } tr.pass .status, b.pass { color: #1a7f37; } tr.missing td { color: var(--muted); }
code { font-size: 12px; }
"""


def _marks_legend(marks: str) -> str:
    """What bold and underlined mean in the leaderboard below, in the words of its marks."""
    if marks == "significance":
        how = ("<b>bold</b>: the row's best score and every score the paired test cannot tell from it (alpha 0.05, "
               "per row); <u>underlined</u>: the best of the rest, likewise")
    else:
        how = "<b>bold</b>: the row's highest score; <u>underlined</u>: the second (compared at the 2 decimals shown)"
    return (f'<p class="legend">Scores in points (0-100). Marks: {how}; — no score. '
            "The notes under the table say which runs count.</p>")


def render_report(store: Store, options: ReportOptions = ReportOptions()) -> str:
    """The page as one HTML string; raises ResultsError when the store lacks the run or its evaluations."""
    from results.plots import compare_figure, run_figure

    lineage = find_lineage(store, options.run)
    suite = options.suite or _suite_of(store, lineage)
    reported = load_reported(options.reported) if options.reported else None
    notes = []
    if reported is not None and reported.suite not in (None, suite):
        notes.append(f"The reported set {reported.name} is for suite {reported.suite}, these runs are in {suite}: "
                     "it is left out of the leaderboard and the regression check.")
        reported = None
    with reading(store) as con:
        evaluated = {r["model_id"] for r in picked_scores(con, [m["model_id"] for m in lineage.models()],
                                                          suite=suite, pick=options.pick, columns=("model_id",))}
    shown = [m["model_id"] for m in lineage.models() if m["model_id"] in evaluated]
    board = build_leaderboard(store, reported=reported, models=shown or None, suite=suite, pick=options.pick,
                              marks=options.marks)
    subject = (lineage.merged or lineage.checkpoints)[-1]
    scores = _figure(lambda: run_figure(store, lineage.run, suite=suite, pick=options.pick))
    if reported is not None and subject["model_id"] in evaluated:
        scores += _figure(lambda: compare_figure(store, subject["model_id"], reported, suite=suite, pick=options.pick))
    last = lineage.checkpoints[-1] if lineage.checkpoints else {}
    facts = [("training run", lineage.run), ("suite", suite), ("checkpoints", str(len(lineage.checkpoints))),
             ("tokens trained", format_tokens(last.get("tokens")) or "—"),
             ("merged models", ", ".join(m["name"] for m in lineage.merged) or "none"),
             ("database", str(store.path.absolute()))]
    sections = [
        ("leaderboard", "Leaderboard", _marks_legend(options.marks) + f'<div class="scroll">{to_html(board)}</div>'),
        ("helped", "Did the merge help?", _help_section(store, lineage, suite, evaluated, options)),
        ("growth", "Growth: what the plan did to the seed", _growth_section(store, lineage, suite, options)),
        ("selection", "Selection: which checkpoint each role took, and why", _selection_section(lineage)),
        ("scores", "Scores by step", scores),
        ("training", "Training loss and learning rate", _training_section(lineage)),
        ("evidence", "What the scores rest on", _precision_section(store, lineage, suite, evaluated, options)),
        ("lineage", "Lineage", _lineage_section(lineage)),
        ("regress", "Regression check", _regress_section(store, lineage, suite, reported, options)),
    ]
    return page_html(f"growbench report: {lineage.run}", f"{options.pick} finished run per model and benchmark",
                     facts, notes, sections, "Written by <code>growbench report</code> from the results database")


def page_html(title: str, subtitle: str, facts: list[tuple[str, str]], notes: list[str],
              sections: list[tuple[str, str, str]], written_by: str, style: str = "") -> str:
    """A self-contained page: the header with its facts and notes, one card per (id, title, HTML) section, no
    network (a Content-Security-Policy forbids every fetch). `written_by` is HTML."""
    from importlib.metadata import version

    body = "\n".join(f'<section class="card" id="{key}"><h2>{head}</h2>\n{content}\n</section>'
                     for key, head, content in sections)
    facts_html = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    notes_html = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}{style}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="sub">{esc(subtitle)} · generated {generated} · growbench {version("growbench")}</p>
<dl class="facts">{facts_html}</dl>
{notes_html}
</header>
<main>
{body}
</main>
<footer class="note">{written_by}; the page loads nothing from the network.</footer>
</body>
</html>
"""


def write_report(store: Store, out: str | Path, options: ReportOptions = ReportOptions()) -> Path:
    """Render the page and write it atomically to `out`."""
    return write_text(out, render_report(store, options))
