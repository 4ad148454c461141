"""Did the merge help? The final model paired, document by document, against the seed, the best single checkpoint
of its training run and each checkpoint the merge was built from, all tests adjusted as one family.

    help = did_it_help(store, "tiny-final", seed="tiny-seed", suite="tiny-builtin")

Against the seed alone a merge always looks good (training did that); the question a merge must answer is whether it
beats what training already gave: the best single checkpoint, defined here as the checkpoint with the highest
unweighted mean over the benchmarks every checkpoint of the run was scored on (a later step wins a tie), and its own
parents. Every row of every comparison (each benchmark and the average) enters one family for the adjustment
(results/compare.py `compare_family`, Holm by default), so the page and the console give the same verdicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from results.compare import CompareReport, compare_family
from results.measured import picked_scores
from results.numbers import signed
from suite.eval.multiplicity import describe
from suite.store import Store
from suite.store.queries import ResultsError, reading, resolve_one, run_checkpoints

MARK = {"better": "better", "worse": "worse", "no detectable difference": "≈"}
"""How a verdict reads in the grid of differences, on the page and the console."""


@dataclass(frozen=True)
class Baseline:
    """A model the final one is tested against, and why it is in the family."""

    name: str
    roles: tuple[str, ...]  # seed, best single checkpoint, merge parent (weight w)

    @property
    def short(self) -> str:
        """The roles in a few characters, for the console's grid: 'best, parent 0.4'."""
        return ", ".join(r.replace("best single checkpoint", "best").replace("merge parent (weight ", "parent ")
                         .rstrip(")") for r in self.roles)


@dataclass
class HelpReport:
    final: str
    baselines: list[Baseline]
    reports: list[CompareReport]  # one per baseline, in the same order
    best_rule: str  # how the best single checkpoint was chosen, with its mean

    @property
    def tests(self) -> int:
        return sum(len(r.family_rows()) for r in self.reports)

    def grid(self) -> tuple[list[str], list[tuple[str, list[str]]]]:
        """The summary the page and the console share: column keys (benchmarks, then average) and, per baseline,
        its label and one cell per column: the difference final - baseline in points and the verdict's mark."""
        keys = list(dict.fromkeys(r.benchmark for report in self.reports for r in report.family_rows()))
        rows = []
        for base, report in zip(self.baselines, self.reports):
            found = {r.benchmark: r for r in report.family_rows()}
            rows.append((f"{base.name} ({base.short})",
                         [f"{signed(found[k].difference)} {MARK[found[k].verdict]}" if k in found else "—"
                          for k in keys]))
        return keys, rows

    def lines(self) -> list[str]:
        """The console's form: how the verdicts were reached, the best single checkpoint, then the grid."""
        first = self.reports[0]
        out = [f"{self.final} - model in points per benchmark; verdicts at alpha {first.alpha:g}, "
               f"{describe(first.adjust, self.tests)} together (better/worse: adjusted p < alpha; ≈: no detectable "
               "difference)"]
        if self.best_rule:
            out.append(f"best single checkpoint: {self.best_rule}")
        keys, rows = self.grid()
        width = max(len(label) for label, _ in rows)
        cells = [max([len(k)] + [len(cells[i]) for _, cells in rows]) for i, k in enumerate(keys)]
        out.append(f"{'against':<{width}}  " + "  ".join(f"{k:>{w}}" for k, w in zip(keys, cells)))
        out += [f"{label:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(values, cells)) for label, values in rows]
        return out


def best_checkpoint(store: Store, run: str, *, suite: str, pick: str = "latest") -> tuple[dict[str, Any], str]:
    """The run's checkpoint with the highest unweighted mean over the benchmarks every checkpoint was scored on
    (later step on a tie), and that rule in words with the mean."""
    with reading(store) as con:
        checkpoints = run_checkpoints(con, run)
        scores = picked_scores(con, [m["model_id"] for m in checkpoints], suite=suite, pick=pick,
                               columns=("model_id", "benchmark", "value"))
    by_model: dict[str, dict[str, float]] = {}
    for row in scores:
        by_model.setdefault(row["model_id"], {})[row["benchmark"]] = row["value"]
    scored = [m for m in checkpoints if m["model_id"] in by_model]
    if not scored:
        raise ResultsError(f"no checkpoint of training run {run!r} has a finished run in suite {suite}")
    common = set.intersection(*(set(by_model[m["model_id"]]) for m in scored))
    if not common:
        raise ResultsError(f"the checkpoints of training run {run!r} share no evaluated benchmark in suite {suite}")
    means = {m["model_id"]: sum(by_model[m["model_id"]][k] for k in common) / len(common) for m in scored}
    best = max(scored, key=lambda m: (means[m["model_id"]], m["step"]))
    return best, (f"{best['name']}, the highest unweighted mean over the {len(common)} benchmarks every checkpoint "
                  f"of {run} was scored on ({means[best['model_id']]:.2f} points; a later step wins a tie)")


def did_it_help(store: Store, final: str, *, seed: str | None = None, suite: str, pick: str = "latest",
                alpha: float = 0.05, adjust: str = "holm") -> HelpReport:
    """Pair `final` with the seed (when given), the best single checkpoint of its parents' training run and each
    merge parent; one family-wise adjustment over every row (see the module docstring)."""
    with reading(store) as con:
        target = resolve_one(con, final)
        parents = json.loads(target["parents"] or "[]") if isinstance(target["parents"], str) else target["parents"]
        # a merged model's parents are checkpoints; a checkpoint's parent is the model it trained from
        parent_rows = [resolve_one(con, p) for p in parents or []] if target["kind"] == "merged" else []
    merge = json.loads(target["merge"]) if isinstance(target["merge"], str) else target["merge"]
    weights = {s.get("fingerprint"): s.get("weight") for s in (merge or {}).get("models", [])}
    roles: dict[str, list[str]] = {}
    names: dict[str, str] = {}

    def add(model: dict[str, Any], role: str) -> None:
        if model["model_id"] != target["model_id"]:
            roles.setdefault(model["model_id"], []).append(role)
            names[model["model_id"]] = model["name"]

    if seed is not None:
        with reading(store) as con:
            add(resolve_one(con, seed), "seed")
    runs = [p["training_run"] for p in parent_rows if p.get("training_run")]
    run = runs[0] if runs else target.get("training_run")
    rule = ""
    if run:
        best, rule = best_checkpoint(store, run, suite=suite, pick=pick)
        add(best, "best single checkpoint")
    for p in parent_rows:
        weight = weights.get(p["model_id"])
        add(p, "merge parent" + (f" (weight {weight:g})" if weight is not None else ""))
    if not roles:
        raise ResultsError(f"nothing to test {target['name']} against: no seed, no checkpoint, no merge parent")
    ids = list(roles)
    reports = compare_family(store, [(target["model_id"], m) for m in ids], suite=suite, alpha=alpha, adjust=adjust,
                             pick=pick)
    return HelpReport(target["name"], [Baseline(names[m], tuple(roles[m])) for m in ids], reports, rule)
