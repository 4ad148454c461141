"""The study page: one self-contained HTML file per growth study, arm against arm at equal tokens.

It shows the held-out loss of every arm against training tokens on one plot (log tokens; the start at 0 tokens on
a linear stretch before the first evaluation), per source below it; where each arm starts (a function-preserving
grown arm at the trained seed's held-out loss, scratch near ln(vocab)); the tokens-to-target table with FLOPs
(results/efficiency.py); the paired comparisons of the arms' final checkpoints with family-wise verdicts
(results/compare.py, one family over every pair); the benchmark table of the arms' checkpoints
(results/leaderboard.py); and the arms' plans side by side. Like the report page (results/report.py, whose style
it shares) it loads nothing from the network, and it is written atomically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.atomic import write_text
from results.compare import CompareReport
from results.efficiency import Efficiency, LossCurve
from results.leaderboard import format_tokens
from results.report import esc, page_html
from suite.eval.multiplicity import describe
from suite.eval.significance import level


@dataclass(frozen=True)
class ArmSummary:
    """What the page says of one arm."""

    name: str
    start: str
    """How it starts: grown, scratch, seed or checkpoint."""
    changes: str
    """What it changes against the study's plan and training ('' for nothing)."""
    description: str
    parameters: int
    preserving: bool
    """Its start model computes the trained seed's function."""
    plan: list[str]
    """Its growth plan's steps, one per line (none for the seed and checkpoint arms)."""
    optimizer: str
    curve: LossCurve
    final_model: str
    vocab: int


@dataclass
class StudyPage:
    name: str
    description: str
    arms: list[ArmSummary]
    target: str
    goal: float
    """The target held-out loss (the target arm's final)."""
    rows: list[Efficiency]
    seed_tokens: int
    """Tokens the seed trained on before growth (which grown and seed-continued arms inherit)."""
    seed_loss: float | None
    """The trained seed's held-out loss (the seed-continued arm's start), when known."""
    held_out: str
    """What the held-out loss is: sources, sequences, tokens."""
    comparisons: list[CompareReport]
    alpha: float
    adjust: str
    board: str
    """The benchmark table (HTML)."""
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def start_checks(page: StudyPage) -> list[str]:
    """Where the arms start, against the two reference points: the trained seed's held-out loss for every
    function-preserving arm, ln(vocab) (a uniform guess) for scratch."""
    lines = []
    for arm in page.arms:
        if arm.preserving and page.seed_loss is not None and arm.start != "seed":
            lines.append(f"{arm.name} (function-preserving) starts at held-out loss {arm.curve.start:.4f}, the trained "
                         f"seed's is {page.seed_loss:.4f} (difference {arm.curve.start - page.seed_loss:+.1e})")
        if arm.start == "scratch":
            lines.append(f"{arm.name} starts at held-out loss {arm.curve.start:.4f}; ln(vocab {arm.vocab:,}) = "
                         f"{math.log(arm.vocab):.4f}, a uniform guess over the vocabulary")
    return lines


def efficiency_lines(page: StudyPage) -> list[str]:
    """The tokens-to-target table as text (the console and the page's note say the same)."""
    width = max(len(r.arm) for r in page.rows)
    lines = [f"target: {page.target}'s final held-out loss {page.goal:.4f} ({page.held_out})",
             f"{'arm':<{width}}  {'start':>7}  {'final':>7}  {'tokens to target':>16}  {'ratio':>6}  "
             f"{'FLOPs to target':>15}"]
    for r in page.rows:
        lines.append(f"{r.arm:<{width}}  {r.start:7.4f}  {r.final:7.4f}  {_tokens(r.to_target):>16}  "
                     f"{_ratio(r.ratio):>6}  {_flops(r.flops_to_target):>15}")
    return lines


def _tokens(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else "at start" if math.isinf(value) else f"{value:.2f}x"


def _flops(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def verdict_lines(page: StudyPage) -> list[str]:
    """One line per pair: its average's verdict (or its only benchmark's), and how many tests the family holds."""
    if not page.comparisons:
        return []
    tests = page.comparisons[0].tests
    lines = [f"paired over the same documents, {describe(page.adjust, tests)} at alpha {page.alpha:g} "
             f"({len(page.comparisons)} pairs)"]
    for c in page.comparisons:
        row = c.average or c.rows[0]
        decided = [r for r in c.family_rows() if r.verdict != "no detectable difference"]
        lines.append(f"  {c.model_a} vs {c.model_b}: {row.benchmark} {row.difference:+.2f} points "
                     f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}], adjusted p {row.p_adjusted:.2g}: {row.verdict}"
                     + (f"; {', '.join(f'{r.benchmark} {r.verdict}' for r in decided if r is not row)}"
                        if any(r is not row for r in decided) else ""))
    return lines


# --- figures -----------------------------------------------------------------------------------------------------

def loss_figure(page: StudyPage, source: str | None = None, size: tuple[float, float] = (12.0, 4.6)) -> Any:
    """Held-out loss against tokens for every arm: with no `source`, the mean over sources in two panels (all of it,
    and zoomed on the target, a dashed line); else that source's. Symlog x: linear up to the first evaluation (0
    tokens is the start), logarithmic above it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    panels = 1 if source is not None else 2
    for i in range(panels):
        ax = fig.add_subplot(1, panels, i + 1)
        for arm in page.arms:
            losses = arm.curve.loss if source is None else arm.curve.sources[source]
            ax.plot(arm.curve.tokens, losses, "--" if arm.start in ("scratch", "seed") else "-", marker="o",
                    markersize=3, label=arm.name)
        if source is None:
            ax.axhline(page.goal, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"target {page.goal:.3f} ({page.target}'s final)", (1, page.goal), xytext=(-4, 4),
                        xycoords=("axes fraction", "data"), textcoords="offset points", ha="right", fontsize=8,
                        color="grey")
        if i == 1:
            finals = [a.curve.final for a in page.arms]
            ax.set_ylim(min(finals) - 0.05, page.goal + 4 * (page.goal - min(finals) + 0.02))
            ax.set_title("zoomed on the target")
        else:
            ax.set_title(source or "held-out loss (mean over sources), every arm")
        _token_axis(ax, page)
        ax.set_ylabel("held-out loss" + (f" ({source})" if source else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncols=2)
    fig.tight_layout()
    return fig


def _token_axis(ax: Any, page: StudyPage) -> None:
    """Symlog tokens: 0 (the start), the first evaluation, powers of ten and the budget marked."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    first = min((a.curve.tokens[1] for a in page.arms if len(a.curve.tokens) > 1), default=1)
    last = max(a.curve.tokens[-1] for a in page.arms)
    ax.set_xscale("symlog", linthresh=first, linscale=0.25)
    decades = [10 ** k for k in range(1, 16) if 2 * first < 10 ** k < last / 2]
    ax.xaxis.set_major_locator(FixedLocator([0, first, *decades, last]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: format_tokens(t) if t > 0 else "0"))
    ax.set_xlabel(f"training tokens (log above {format_tokens(first)}; 0: before training)")


def _figure(make: Any) -> str:
    from results.plots import svg

    return f'<div class="plot">{svg(make())}</div>'


# --- sections ----------------------------------------------------------------------------------------------------

def _table(head: list[str], rows: list[list[str]], text: int = 1) -> str:
    """A table whose first `text` columns are left-aligned text, the rest numbers."""
    def cell(tag: str, i: int, content: str) -> str:
        return f'<{tag} class="text">{content}</{tag}>' if i < text else f"<{tag}>{content}</{tag}>"

    th = "".join(cell("th", i, esc(h)) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _curves_section(page: StudyPage) -> str:
    sources = sorted(page.arms[0].curve.sources) if page.arms else []
    per_source = "".join(_figure(lambda s=s: loss_figure(page, s, (6.0, 3.8))) for s in sources)
    return (f'<p>{esc(page.held_out)}. Dashed: the controls (scratch, seed-continued).</p>'
            + _figure(lambda: loss_figure(page)) + f"<h3>Per source</h3><div class=\"grid\">{per_source}</div>")


def _start_section(page: StudyPage) -> str:
    rows = [[esc(a.name), esc(a.start), "yes" if a.preserving else "no", f"{a.curve.start:.4f}",
             "—" if page.seed_loss is None else f"{a.curve.start - page.seed_loss:+.4f}",
             f"{math.log(a.vocab):.4f}"] for a in page.arms]
    checks = "".join(f"<li>{esc(line)}</li>" for line in start_checks(page))
    return (_table(["arm", "start", "function-preserving", "held-out loss before training", "minus trained seed's",
                    "ln(vocab)"], rows) + f"<ul>{checks}</ul>")


def _efficiency_section(page: StudyPage) -> str:
    by_arm = {a.name: a for a in page.arms}
    rows = []
    for r in page.rows:
        inherits = by_arm[r.arm].start in ("grown", "seed")
        total = None if r.to_target is None else r.to_target + (page.seed_tokens if inherits else 0)
        reference = next(x.to_target for x in page.rows if x.arm == page.target)
        rows.append([esc(r.arm), f"{by_arm[r.arm].parameters:,}", f"{r.flops:.3g}",
                     f"{r.start:.4f}", f"{r.final:.4f}", esc(_tokens(r.to_target)), esc(_ratio(r.ratio)),
                     esc(_flops(r.flops_to_target)), esc(_tokens(total)),
                     "—" if total is None or reference is None else f"{reference / total:.2f}x" if total else "—"])
    note = (f"Every arm trained on {page.rows[0].tokens:,} tokens (FLOPs: 6N + attention per token, times "
            f"those tokens). Target: {esc(page.target)}'s final held-out loss {page.goal:.4f}. Tokens to target: the first "
            "evaluation at or below it, interpolated linearly in tokens from the one before; ratio: the target arm's "
            f"tokens to target over the arm's. The seed trained on {page.seed_tokens:,} tokens before growth, which "
            "the grown and seed-continued arms inherit: the last two columns count them.")
    return (_table(["arm", "parameters", "FLOPs", "start", "final", "tokens to target", "ratio",
                    "FLOPs to target", "with the seed's tokens", "ratio with them"], rows)
            + f'<p class="note">{note}</p>')


def _verdicts_section(page: StudyPage) -> str:
    if not page.comparisons:
        return '<p class="note">no comparisons</p>'
    first = page.comparisons[0]
    rows = [[esc(f"{c.model_a} vs {c.model_b}"), esc(r.benchmark), f"{r.a:.2f}", f"{r.b:.2f}", f"{r.difference:+.2f}",
             f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]", f"{r.p_value:.2g}", f"{r.p_adjusted:.2g}", esc(r.test),
             str(r.n), f"<b>{esc(r.verdict)}</b>" if r.verdict != "no detectable difference" else esc(r.verdict)]
            for c in page.comparisons for r in c.family_rows()]
    skipped = [f"{c.model_a} vs {c.model_b}: {k} not compared ({why})" for c in page.comparisons
               for k, why in c.skipped.items()]
    return (f'<p>Final checkpoints, paired over the documents both scored (points); verdicts at alpha '
            f'{page.alpha:g}, {esc(describe(page.adjust, first.tests))} ({len(page.comparisons)} pairs together); '
            f'each interval is its own test\'s {level(page.alpha)} interval (unadjusted).</p>'
            + _table(["pair", "benchmark", "arm", "control", "difference", f"{level(page.alpha)} CI", "p",
                      "adjusted p", "test", "documents", "verdict"], rows)
            + "".join(f'<p class="note">{esc(s)}</p>' for s in skipped))


def _arms_section(page: StudyPage) -> str:
    rows = [[esc(a.name), esc(a.start), esc(a.changes or "—"), "<br>".join(esc(s) for s in a.plan) or "—",
             esc(a.optimizer), esc(a.description)] for a in page.arms]
    return _table(["arm", "start", "changes", "growth plan", "optimizer", "description"], rows, text=6)


STYLE = """
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 8px; }
th.text, td.text { text-align: left; white-space: normal; vertical-align: top; }
"""


def render_study(page: StudyPage) -> str:
    sections = [
        ("curves", "Held-out loss against tokens", _curves_section(page)),
        ("start", "Where each arm starts", _start_section(page)),
        ("efficiency", "Tokens to target", _efficiency_section(page)),
        ("verdicts", "Paired comparisons", _verdicts_section(page)),
        ("benchmarks", "Benchmark scores per arm", f'<div class="scroll">{page.board}</div>'),
        ("arms", "The arms side by side", _arms_section(page)),
    ]
    return page_html(f"growbench study: {page.name}", page.description, page.facts, page.notes, sections,
                     "Written by <code>growbench study</code> from the arms' metrics.jsonl and the results database",
                     STYLE)


def write_study_page(page: StudyPage, out: str | Path) -> Path:
    return write_text(out, render_study(page))
