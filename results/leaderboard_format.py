"""Render a Leaderboard as Markdown (the card's own table style), CSV, HTML or LaTeX.

The Markdown follows the OpenSeek-Mid-v1 card byte for byte: `**best**`, `<u>second</u>`, an italic training-tokens
row, a blank row before the averages, and the card's own model in bold. CSV carries plain numbers for machines
(missing = empty, no marks); HTML and LaTeX keep the marks. Every format except CSV ends with the notes.
"""

from __future__ import annotations

import csv
import html
import io

from growth.foundation.errors import ConfigError
from results.leaderboard import Column, Leaderboard, Row

FORMATS = ("md", "csv", "html", "latex")
MISSING = "—"


def _number(v: float | str | None) -> str:
    if v is None:
        return MISSING
    return v if isinstance(v, str) else f"{v:.2f}"


def _cells(row: Row, columns: list[Column], bold: str, under: str, italic: str) -> list[str]:
    """Cell texts with marks applied; `bold`, `under`, `italic` are format strings with one {} slot."""
    out = []
    for col, value, mark in zip(columns, row.values, row.marks):
        text = _number(value)
        if row.kind == "tokens":
            text = italic.format(bold.format(text) if col.highlight else text)
        elif mark == "best":
            text = bold.format(text)
        elif mark == "second":
            text = under.format(text)
        out.append(text)
    return out


def _label(row: Row, bold: str, italic: str) -> str:
    return italic.format(row.label) if row.kind == "tokens" else bold.format(row.label) if row.kind == "average" \
        else row.label


def to_markdown(lb: Leaderboard) -> str:
    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    lines = [line(["Benchmark"] + [f"**{c.label}**" if c.highlight else c.label for c in lb.columns]),
             "|" + "---|" * (len(lb.columns) + 1)]
    for row in lb.rows:
        if row.kind == "blank":
            lines.append(line([""] * (len(lb.columns) + 1)))
        else:
            lines.append(line([_label(row, "**{}**", "*{}*")] + _cells(row, lb.columns, "**{}**", "<u>{}</u>", "*{}*")))
    if lb.notes:
        lines += [""] + [f"- {n}" for n in lb.notes]
    return "\n".join(lines) + "\n"


def to_csv(lb: Leaderboard) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["benchmark", "key"] + [c.label for c in lb.columns])
    for row in lb.rows:
        if row.kind != "blank":
            writer.writerow([row.label, row.key] + ["" if v is None else v if isinstance(v, str) else f"{v:.2f}"
                                                    for v in row.values])
    return buf.getvalue()


def to_html(lb: Leaderboard) -> str:
    esc = html.escape
    head = "".join(f"<th>{'<b>' + esc(c.label) + '</b>' if c.highlight else esc(c.label)}</th>" for c in lb.columns)
    body = []
    for row in lb.rows:
        if row.kind == "blank":
            continue
        cells = _cells(Row(row.label, row.key, row.kind, [None if v is None else esc(_number(v)) for v in row.values],
                           row.marks), lb.columns, "<b>{}</b>", "<u>{}</u>", "<i>{}</i>")
        label = _label(Row(esc(row.label), row.key, row.kind, []), "<b>{}</b>", "<i>{}</i>")
        body.append(f"<tr><td>{label}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in lb.notes)
    return (f"<table>\n<thead><tr><th>Benchmark</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody>\n</table>\n" + (f"<ul>{notes}</ul>\n" if notes else ""))


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "—": "---"}


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(lb: Leaderboard) -> str:
    header = " & ".join(["Benchmark"] + [r"\textbf{" + _tex(c.label) + "}" if c.highlight else _tex(c.label)
                                         for c in lb.columns])
    lines = [r"\begin{tabular}{l" + "r" * len(lb.columns) + "}", r"\toprule", header + r" \\", r"\midrule"]
    for row in lb.rows:
        if row.kind == "blank":
            lines.append(r"\midrule")
            continue
        escaped = Row(row.label, row.key, row.kind, [None if v is None else _tex(_number(v)) for v in row.values],
                      row.marks)
        cells = [_tex(MISSING) if v is None else c for v, c in
                 zip(row.values, _cells(escaped, lb.columns, r"\textbf{{{}}}", r"\underline{{{}}}", r"\textit{{{}}}"))]
        label = _label(Row(_tex(row.label), row.key, row.kind, []), r"\textbf{{{}}}", r"\textit{{{}}}")
        lines.append(" & ".join([label] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [r"\par\footnotesize " + _tex(n) for n in lb.notes]
    return "\n".join(lines) + "\n"


def render(lb: Leaderboard, fmt: str) -> str:
    renderers = {"md": to_markdown, "csv": to_csv, "html": to_html, "latex": to_latex}
    if fmt not in renderers:
        raise ConfigError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt](lb)
