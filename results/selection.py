"""How the merge was chosen, from the recipe's own record: which split the selector's scores rest on, the scores
that drove each choice (points, as the leaderboard prints them) and the rule that decided.

The leaderboard shows each model's counted runs on the suite's documents; the selector may have seen other documents
(greedy-soup and search score merges on a dev split: the first `limit` documents of a few benchmarks) or the very
same ones (anchors ranks the counted runs), and a reader must know which before comparing a choice with the table.
`summarize` turns a recipe (suite/select/selector.py writes its `selection` record and each model's `evidence`) into
a `SelectionSummary`; `selection_lines` prints it for a console, results/report.py renders it on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from growth.merge.recipe import MergeRecipe


@dataclass(frozen=True)
class RoleTest:
    """The chosen checkpoint against one other free candidate on the role's metric (points)."""

    other: str
    score: float | None
    difference: float | None
    p_value: float | None
    test: str
    beaten: bool


@dataclass
class RoleChoice:
    """One anchors role: the checkpoint it took, its score and rank on the role's metric, the rule that decided in
    plain words, and the tests behind it."""

    role: str
    metric: str
    weight: float | None
    chosen: str
    score: float | None
    rank: int | None
    of: int  # candidates scored on the metric
    why: str
    best: str | None = None  # the top free checkpoint, whose tests against the others decided
    tests: list[RoleTest] = field(default_factory=list)


def plain_reason(decided_by: str, rank: int | None, of: int, best: str | None = None,
                 tied: list[str] = ()) -> str:
    """The selector's rule as a reader needs it, saying why the chosen checkpoint is not the top score when it is
    not (`best`: the top free checkpoint; `tied`: the free ones the paired test could not tell from it)."""
    rule = _reason(decided_by)
    behind = (f" Its score ranks {rank} of {of} among all candidates (higher ones were taken by earlier roles or "
              "within noise)." if rank and rank > 1 else "")
    if rule.startswith("the only free checkpoint"):
        taken = decided_by.split("earlier roles took ", 1)[1] if "earlier roles took " in decided_by else ""
        return ("Every other checkpoint was already taken by an earlier role (each role takes a distinct "
                f"checkpoint{': ' + taken if taken else ''}), so this role got the one left, whatever its score; "
                "no test was run." + behind)
    if rule.startswith("tie-break"):
        how = rule.removeprefix("tie-break ").strip()
        pick = {"later": "the latest step", "earlier": "the earliest step", "value": "the highest score"}.get(how, how)
        others = [t for t in tied if t != best]
        who = (f"{best} has the top score among the free checkpoints but does not beat {', '.join(others)} beyond "
               "noise (paired test), so they count as tied" if best and others else
               "No checkpoint beat the others beyond noise (paired test), so they count as tied")
        return f"{who}, and the tie-break took {pick}." + behind
    if rule.startswith("beats every other"):
        return "The top score, and it beats every other free checkpoint beyond noise (paired test)." + behind
    if rule == "value":
        return "The highest score (the noise test is off)." + behind
    return decided_by + "."


@dataclass
class SelectionSummary:
    """One recipe's selection: the split sentence, a score table (rows: candidates or trials; columns: the
    benchmarks whose scores decided; points) with what each row became, and one line per choice."""

    strategy: str
    split: str
    columns: list[str]
    rows: list[tuple[str, list[float | None], str]] = field(default_factory=list)  # label, scores, outcome
    choices: list[str] = field(default_factory=list)  # trials and hand-written recipes: what was chosen
    roles: list[RoleChoice] = field(default_factory=list)  # anchors: each role's choice and the reason


def _points(value: Any) -> float | None:
    return None if value is None else 100 * float(value)


def _reason(decided_by: str) -> str:
    """The rule alone, without the numbers behind it: 'tie-break later', 'the only free checkpoint'."""
    return decided_by.split(":")[0].split(";")[0].split(" (")[0]


def _anchors(selection: Mapping[str, Any], models: list[Mapping[str, Any]]) -> SelectionSummary:
    split = selection.get("split") or {}
    documents = split.get("documents") or {}
    docs = sorted({n for counts in documents.values() for n in counts})
    sentence = (f"anchors ranked each candidate's counted run in suite {selection.get('suite')} "
                f"({'/'.join(map(str, docs)) or 'unknown'} documents per benchmark): "
                + (split.get("note") or "the runs the leaderboard shows"))
    scores: Mapping[str, Mapping[str, float]] = selection.get("scores") or {}
    metrics = list(scores)
    chosen = {m.get("name"): f"{m.get('role')} (weight {m.get('weight')}): "
                             f"{_reason((m.get('evidence') or {}).get('decided_by', 'no record of the rule'))}"
              for m in models}
    names = [c["name"] for c in selection.get("candidates", [])] or sorted({n for s in scores.values() for n in s})
    summary = SelectionSummary("anchors", sentence, metrics)
    for name in names:
        summary.rows.append((name, [_points(scores[k].get(name)) for k in metrics], chosen.get(name, "")))
    roles = {r.get("role"): r.get("metric") for r in selection.get("roles", [])}
    taken: set[str] = set()
    for m in models:
        evidence = m.get("evidence") or {}
        metric = roles.get(m.get("role"))
        score = _points(evidence.get(metric))
        scored = len(scores.get(metric) or {})
        tests = [RoleTest(name, _points(c.get("score")), _points(c.get("difference")), c.get("p_value"),
                      c.get("test", ""), bool(c.get("beaten")))
                 for name, c in (evidence.get("compared") or {}).items()]
        free = {n: v for n, v in (scores.get(metric) or {}).items() if n not in taken}
        best = max(free, key=lambda n: free[n]) if free else None
        taken.add(m.get("name"))
        summary.roles.append(RoleChoice(m.get("role") or "", metric or "", m.get("weight"), m.get("name") or "",
                                        score, evidence.get("rank"), scored,
                                        plain_reason(evidence.get("decided_by", "no record of the rule"),
                                                     evidence.get("rank"), scored, best,
                                                     [best] + [t.other for t in tests if not t.beaten]),
                                        best, tests))
    return summary


def _trials(strategy: str, selection: Mapping[str, Any], models: list[Mapping[str, Any]]) -> SelectionSummary:
    split = selection.get("split") or {}
    noise = selection.get("noise") or {}
    level = (f"each trial at alpha {noise['alpha']:g} / {noise['trials']} = {noise['alpha_per_trial']:.3g} "
             f"({noise.get('spent', 'Bonferroni')}, so any kept move is noise with chance <= {noise['alpha']:g})"
             if "alpha_per_trial" in noise else f"noise test {noise.get('test', 'none')}")
    benchmarks = list(split.get("benchmarks") or (selection.get("dev") or {}).get("benchmarks") or [])
    sentence = (f"{strategy} scored merges on the dev split of suite {split.get('suite')}: "
                f"{split.get('note', 'see the recipe')} ({', '.join(benchmarks)}); {level}")
    summary = SelectionSummary(strategy, sentence, benchmarks + ["dev mean"])
    for i, step in enumerate(selection.get("steps", [])):
        if "tried" in step:
            label = ", ".join(step["tried"])
        else:
            label = ", ".join(f"{w:g} {n}" for n, w in step.get("weights", {}).items())
        kept = step.get("accepted", step.get("kept"))
        outcome = ("kept" if kept else "not kept") + (f": {step['decided_by']}" if step.get("decided_by") else "")
        dev = step.get("dev_scores") or {}
        summary.rows.append((f"{'start' if i == 0 else f'trial {i}'}: {label}",
                             [_points(dev.get(k)) for k in benchmarks] + [_points(step.get("dev_score"))], outcome))
    summary.choices = [f"{m.get('role') or 'chosen'}: {m.get('name')} weight {m.get('weight')}" for m in models]
    return summary


def summarize(recipe: MergeRecipe | Mapping[str, Any]) -> SelectionSummary:
    """The summary of a recipe (a MergeRecipe, or its dict form as merge.json stores it)."""
    data = recipe.to_dict() if isinstance(recipe, MergeRecipe) else recipe
    selection = data.get("selection") or {}
    models = list(data.get("models", []))
    strategy = selection.get("strategy")
    if strategy == "anchors":
        return _anchors(selection, models)
    if strategy in ("greedy-soup", "search"):
        return _trials(strategy, selection, models)
    summary = SelectionSummary(strategy or "none", "the recipe holds no selector record (written by hand or by an "
                                                   "unknown strategy): nothing says which scores chose it", [])
    summary.choices = [f"{m.get('role') or 'chosen'}: {m.get('name') or m.get('path')} weight {m.get('weight')}"
                       for m in models]
    return summary


def selection_lines(recipe: MergeRecipe | Mapping[str, Any]) -> list[str]:
    """The summary as console lines: the split, then the score table with what each row became (the report page
    adds the full rule behind each choice)."""
    s = summarize(recipe)
    out = [f"selection: {s.split}"]
    if s.rows:
        width = max(len(label) for label, _, _ in s.rows)
        cells = [max(len(c), 6) for c in s.columns]
        out.append(f"  {'':<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(s.columns, cells)))
        for label, values, outcome in s.rows:
            numbers = "  ".join("—".rjust(w) if v is None else f"{v:>{w}.2f}" for v, w in zip(values, cells))
            out.append(f"  {label:<{width}}  {numbers}  {outcome}".rstrip())
    if s.strategy != "anchors":  # the table lists trials: say what was chosen
        out += [f"  {line}" for line in s.choices]
    out += [f"  {r.role}: {r.chosen}. {r.why}" for r in s.roles]
    return out
