"""Paired model comparison: is model A better than model B, benchmark by benchmark, beyond noise?

    growbench compare tiny-final tiny-seed [--benchmarks tiny_cloze,tiny_code] [--alpha 0.05]

Per benchmark the counted run of each model (the store's one rule, suite/store/queries.py) is paired with the other's document by
document (suite/eval/paired_runs.py): the difference of the headline score, its paired-bootstrap 95% confidence
interval, the p-value of McNemar's exact test for 0/1 metrics (else of the paired bootstrap) and the verdict:
better, worse, or no detectable difference at alpha. Two means from separate runs say nothing alone at 8 or 300
documents; the paired test on the same documents is what can.

Refused in one line (exit 2): an unknown model, two models that share no evaluated benchmark, and runs that stored
no per-document results (evaluated before growbench stored them: re-run with --force).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from suite.store import Store
from suite.store.queries import ResultsError, picked_runs, reading, resolve_one


@dataclass(frozen=True)
class CompareRow:
    """One benchmark's paired comparison, scores and CI in points (x100)."""

    benchmark: str
    title: str
    n: int  # documents paired
    a: float  # paired means, x100
    b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    verdict: str


@dataclass
class CompareReport:
    """A's counted runs against B's, one row per benchmark compared, and why any other was not."""

    model_a: str
    model_b: str
    suite: str
    alpha: float
    rows: list[CompareRow] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # benchmark -> why it was not compared

    def to_dict(self) -> dict[str, Any]:
        return {"model_a": self.model_a, "model_b": self.model_b, "suite": self.suite, "alpha": self.alpha,
                "rows": [asdict(r) for r in self.rows], "skipped": self.skipped}

    def lines(self) -> list[str]:
        """One line per benchmark, as the pipeline's report prints it."""
        out = []
        for r in self.rows:
            out.append(f"{r.benchmark}: {self.model_a} {r.a:.2f} vs {self.model_b} {r.b:.2f}, difference "
                       f"{r.difference:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}], {_p(r.p_value)} ({r.test}, "
                       f"{r.n} documents): {_verdict(r.verdict, self.model_a, self.model_b, self.alpha)}")
        out += [f"{key}: not compared ({why})" for key, why in self.skipped.items()]
        return out

    def short_lines(self) -> list[str]:
        """The same in a few columns: benchmark, difference and 95% CI (points), p, verdict."""
        width = max([len(r.benchmark) for r in self.rows] + [9])
        tests = sorted({r.test for r in self.rows})
        out = [f"{'benchmark':<{width}}  {self.model_a} - {self.model_b} [95% CI]  p ({', '.join(tests)}, "
               f"{'/'.join(sorted({str(r.n) for r in self.rows}))} documents)  verdict at alpha {self.alpha:g}"]
        for r in self.rows:
            out.append(f"{r.benchmark:<{width}}  {r.difference:+7.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]  "
                       f"{_p(r.p_value):<10}  {r.verdict}")
        out += [f"{key:<{width}}  not compared ({why})" for key, why in self.skipped.items()]
        return out


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 1e-4"


def _verdict(verdict: str, a: str, b: str, alpha: float) -> str:
    if verdict == "better":
        return f"{a} is better (alpha {alpha:g})"
    if verdict == "worse":
        return f"{a} is worse (alpha {alpha:g})"
    return f"no detectable difference at alpha {alpha:g}"


def _suite(con: Any, a: dict[str, Any], b: dict[str, Any], suite: str | None) -> str:
    from suite.store.samples import finished_suites

    if suite is not None:
        return suite
    shared = [s for s in finished_suites(con, a["model_id"]) if s in finished_suites(con, b["model_id"])]
    if len(shared) > 1:
        raise ResultsError(f"{a['name']} and {b['name']} were both evaluated in suites {', '.join(shared)}; "
                           "choose one with --suite")
    return shared[0] if shared else "openseek-mid-v1"


def compare(store: Store, model_a: str, model_b: str, *, benchmarks: list[str] | None = None,
            suite: str | None = None, alpha: float = 0.05, pick: str = "latest") -> CompareReport:
    """Pair A's and B's counted runs per shared benchmark (see the module docstring)."""
    from suite.eval.benchmarks import load_suite
    from suite.eval.paired_runs import BenchmarkSamples
    from suite.eval.significance import compare_paired

    if not 0 < alpha < 1:
        raise ResultsError(f"--alpha must be between 0 and 1, got {alpha}")
    with reading(store) as con:
        a, b = resolve_one(con, model_a), resolve_one(con, model_b)
        suite_name = _suite(con, a, b, suite)
        runs_a = {r["benchmark"]: r for r in picked_runs(con, [a["model_id"]], suite=suite_name, pick=pick)}
        runs_b = {r["benchmark"]: r for r in picked_runs(con, [b["model_id"]], suite=suite_name, pick=pick)}
        definition = load_suite(suite_name)
        shared = [k for k in definition.keys if k in runs_a and k in runs_b]
        if benchmarks:
            definition.select(benchmarks)  # unknown keys: a one-line error naming the suite's benchmarks
            absent = [k for k in benchmarks if k not in shared]
            if absent:
                raise ResultsError(f"no finished run of both {a['name']} and {b['name']} on {', '.join(absent)} in "
                                   f"suite {suite_name}; both have: {', '.join(shared) or 'none'}")
            shared = [k for k in shared if k in benchmarks]
        if not shared:
            raise ResultsError(f"{a['name']} and {b['name']} share no evaluated benchmark in suite {suite_name} "
                               f"({a['name']}: {', '.join(sorted(runs_a)) or 'none'}; {b['name']}: "
                               f"{', '.join(sorted(runs_b)) or 'none'})")
        samples = {k: BenchmarkSamples.load(con, definition.get(k), [runs_a[k]["run_id"], runs_b[k]["run_id"]])
                   for k in shared}
    report = CompareReport(a["name"], b["name"], suite_name, alpha)
    for key in shared:
        ra, rb, found = runs_a[key]["run_id"], runs_b[key]["run_id"], samples[key]
        lacking = [m["name"] for m, run in ((a, ra), (b, rb)) if not found.has(run)]
        parts = None if lacking else found.strata(ra, rb)
        if parts is None:
            report.skipped[key] = (f"no per-document results stored for {' and '.join(lacking)}; re-run it with "
                                   "--force" if lacking else "the two runs share no document")
            continue
        r = compare_paired(parts, alpha=alpha)
        report.rows.append(CompareRow(key, definition.get(key).title, r.n, 100 * r.mean_a, 100 * r.mean_b,
                                      100 * r.difference, 100 * r.ci_low, 100 * r.ci_high, r.p_value, r.test,
                                      r.verdict))
    if not report.rows:
        raise ResultsError(f"no per-document results to pair for {a['name']} vs {b['name']} in suite {suite_name}: "
                           + "; ".join(f"{k}: {why}" for k, why in report.skipped.items()))
    return report


def same_scores(store: Store, model_a: str, model_b: str, *, suite: str, pick: str = "latest") -> list[str]:
    """The benchmarks on which A's and B's counted scores differ (exact comparison of the stored values); empty
    when every benchmark both have is equal. For a growth step that claims to preserve the function."""
    with reading(store) as con:
        a, b = resolve_one(con, model_a), resolve_one(con, model_b)
        runs_a = {r["benchmark"]: r["value"] for r in picked_runs(con, [a["model_id"]], suite=suite, pick=pick)}
        runs_b = {r["benchmark"]: r["value"] for r in picked_runs(con, [b["model_id"]], suite=suite, pick=pick)}
    shared = sorted(set(runs_a) & set(runs_b))
    if not shared:
        raise ResultsError(f"{a['name']} and {b['name']} share no evaluated benchmark in suite {suite}")
    return [k for k in shared if runs_a[k] != runs_b[k]]
