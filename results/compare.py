"""Paired model comparison: is model A better than model B, benchmark by benchmark, beyond noise?

    growbench compare tiny-final tiny-seed [--benchmarks tiny_cloze,tiny_code] [--alpha 0.05] [--adjust holm]

Per benchmark the counted run of each model (the store's one rule, suite/store/queries.py) is paired with the other's
document by document (suite/eval/paired_runs.py). Each row holds the difference of the headline score, its standard
error, the p-value of the paired test (suite/eval/significance.py: McNemar's test with continuity correction for 0/1
metrics, else the paired sign-flip test) and the (1 - alpha) interval that inverts that test, so the interval
excludes 0 exactly when the raw p < alpha. With two or more benchmarks, one more row tests their unweighted average
(every benchmark's documents at once, each benchmark weighing 1/k). The verdicts (better, worse, no detectable
difference) are family-wise: the p-values of all rows are adjusted together (suite/eval/multiplicity.py; Holm by
default), and a verdict needs adjusted p < alpha; the report says how many tests ran and how they were adjusted.

Refused in one line (exit 2): an unknown model, two models that share no evaluated benchmark, runs that stored
no per-document results (evaluated before growbench stored them: re-run with --force), an alpha outside
[0.001, 0.5] and an unknown adjustment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from results.numbers import interval, p_phrase, p_value, signed
from suite.eval.multiplicity import ADJUSTMENTS, describe
from suite.eval.multiplicity import adjust as adjusted_p
from suite.eval.significance import METHODS, PairedResult, level, verdict
from suite.store import Store
from suite.store.queries import ResultsError, one_suite, picked_runs, reading, resolve_one

AVERAGE = "average"


@dataclass(frozen=True)
class CompareRow:
    """One benchmark's (or the average's) paired comparison; scores, standard error and interval in points."""

    benchmark: str
    title: str
    n: int  # documents paired
    a: float  # paired means, x100
    b: float
    difference: float
    stderr: float
    ci_low: float  # the (1 - alpha) interval of this row's own test
    ci_high: float
    p_value: float  # raw
    p_adjusted: float  # across the report's family of tests
    test: str
    verdict: str  # from p_adjusted

    @classmethod
    def of(cls, key: str, title: str, r: PairedResult) -> CompareRow:
        return cls(key, title, r.n, 100 * r.mean_a, 100 * r.mean_b, 100 * r.difference, 100 * r.stderr,
                   100 * r.ci_low, 100 * r.ci_high, r.p_value, r.p_value, r.test, r.verdict)


@dataclass
class CompareReport:
    """A's counted runs against B's, one row per benchmark compared (plus their average), the family-wise
    adjustment of the verdicts, and why any other benchmark was not compared."""

    model_a: str
    model_b: str
    suite: str
    alpha: float
    adjust: str = "holm"
    rows: list[CompareRow] = field(default_factory=list)  # one per benchmark compared
    average: CompareRow | None = None  # their unweighted mean, when 2 or more were compared
    skipped: dict[str, str] = field(default_factory=dict)  # benchmark -> why it was not compared
    family_size: int | None = None
    """Tests adjusted together when this report is one of several (compare_family); None: its own rows."""

    def family_rows(self) -> list[CompareRow]:
        """This report's rows whose verdicts the adjustment covers: the benchmarks, then the average."""
        return self.rows + ([self.average] if self.average is not None else [])

    @property
    def tests(self) -> int:
        return self.family_size or len(self.family_rows())

    def family(self) -> str:
        """How the verdicts were reached, in one line."""
        return (f"verdicts at alpha {self.alpha:g}, {describe(self.adjust, self.tests)}; each interval is its own "
                f"test's {level(self.alpha)} interval (unadjusted)")

    def to_dict(self) -> dict[str, Any]:
        return {"model_a": self.model_a, "model_b": self.model_b, "suite": self.suite, "alpha": self.alpha,
                "adjust": self.adjust, "tests": self.tests, "family": self.family(),
                "methods": {t: METHODS[t] for t in sorted({r.test for r in self.family_rows()})},
                "rows": [asdict(r) for r in self.rows],
                "average": asdict(self.average) if self.average is not None else None, "skipped": self.skipped}

    def lines(self) -> list[str]:
        """How the verdicts were reached, then one line per row, as the pipeline's evidence file prints it."""
        tests = sorted({r.test for r in self.family_rows()})
        out = [self.family() + "; tests: " + "; ".join(f"{t}: {METHODS[t]}" for t in tests)]
        for r in self.family_rows():
            out.append(f"{r.benchmark}: {self.model_a} {r.a:.2f} vs {self.model_b} {r.b:.2f}, difference "
                       f"{signed(r.difference)} ± {r.stderr:.2f} se, {level(self.alpha)} CI "
                       f"{interval(r.ci_low, r.ci_high)}, {p_phrase(r.p_value)}, "
                       f"{p_phrase(r.p_adjusted, 'adjusted p')} ({r.test}, {r.n} documents): "
                       f"{_verdict(r.verdict, self.model_a, self.model_b)}")
        out += [f"{key}: not compared ({why})" for key, why in self.skipped.items()]
        return out

    def short_lines(self) -> list[str]:
        """The same in a few columns: benchmark, difference and its interval (points), raw and adjusted p,
        verdict; a first line says how the verdicts were reached."""
        width = max([len(r.benchmark) for r in self.family_rows()] + [9])
        tests = sorted({r.test for r in self.family_rows()})
        docs = "/".join(sorted({str(r.n) for r in self.rows}, key=int))
        out = [f"{describe(self.adjust, self.tests)} at alpha {self.alpha:g} ({', '.join(tests)}; {docs} documents; "
               f"intervals per test)",
               f"{'benchmark':<{width}}  {self.model_a} - {self.model_b} [{level(self.alpha)} CI]  {'p':<7}  "
               f"{'adj. p':<7}  verdict"]
        for r in self.family_rows():
            out.append(f"{r.benchmark:<{width}}  {signed(r.difference):>7} {interval(r.ci_low, r.ci_high)}  "
                       f"{p_value(r.p_value):<7}  {p_value(r.p_adjusted):<7}  {r.verdict}")
        out += [f"{key:<{width}}  not compared ({why})" for key, why in self.skipped.items()]
        return out


def _verdict(verdict: str, a: str, b: str) -> str:
    if verdict == "better":
        return f"{a} is better"
    if verdict == "worse":
        return f"{a} is worse"
    return "no detectable difference"


def compare(store: Store, model_a: str, model_b: str, *, benchmarks: list[str] | None = None,
            suite: str | None = None, alpha: float = 0.05, adjust: str = "holm", pick: str = "latest"
            ) -> CompareReport:
    """Pair A's and B's counted runs per shared benchmark and test them as one family (see the module docstring)."""
    from suite.eval.benchmarks import load_suite
    from suite.eval.paired_runs import BenchmarkSamples
    from suite.eval.significance import average_strata, compare_paired

    if not 0.001 <= alpha <= 0.5:
        raise ResultsError(f"--alpha must be between 0.001 and 0.5, got {alpha}")
    if adjust not in ADJUSTMENTS:
        raise ResultsError(f"unknown --adjust {adjust!r}; use one of {', '.join(ADJUSTMENTS)}")
    with reading(store) as con:
        a, b = resolve_one(con, model_a), resolve_one(con, model_b)
        if a["model_id"] == b["model_id"]:
            raise ResultsError(f"{model_a!r} and {model_b!r} are the same model ({a['name']}); compare two "
                               "different models")
        suite_name = one_suite(con, suite, [a["model_id"], b["model_id"]], every=True,
                               whose=f"both {a['name']} and {b['name']}")
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
    report = CompareReport(a["name"], b["name"], suite_name, alpha, adjust)
    paired = []
    for key in shared:
        ra, rb, found = runs_a[key]["run_id"], runs_b[key]["run_id"], samples[key]
        lacking = [m["name"] for m, run in ((a, ra), (b, rb)) if not found.has(run)]
        parts = None if lacking else found.strata(ra, rb)
        if parts is None:
            report.skipped[key] = (f"no per-document results stored for {' and '.join(lacking)}; re-run it with "
                                   "--force" if lacking else "the two runs share no document")
            continue
        paired.append(parts)
        report.rows.append(CompareRow.of(key, definition.get(key).title, compare_paired(parts, alpha=alpha)))
    if not report.rows:
        raise ResultsError(f"no per-document results to pair for {a['name']} vs {b['name']} in suite {suite_name}: "
                           + "; ".join(f"{k}: {why}" for k, why in report.skipped.items()))
    if len(paired) > 1:
        names = [r.benchmark for r in report.rows]
        report.average = CompareRow.of(AVERAGE, f"unweighted mean of {', '.join(names)}",
                                       compare_paired(average_strata(paired), alpha=alpha))
    _adjust_together([report], adjust)
    return report


def compare_family(store: Store, pairs: list[tuple[str, str]], *, suite: str | None = None, alpha: float = 0.05,
                   adjust: str = "holm", pick: str = "latest") -> list[CompareReport]:
    """`compare` for several pairs of models read together (a study's arms against its controls): the p-values of
    every row of every pair are adjusted as one family, and each report says how many tests that family holds."""
    if adjust not in ADJUSTMENTS:
        raise ResultsError(f"unknown --adjust {adjust!r}; use one of {', '.join(ADJUSTMENTS)}")
    reports = [compare(store, a, b, suite=suite, alpha=alpha, adjust="none", pick=pick) for a, b in pairs]
    for report in reports:
        report.adjust = adjust
    _adjust_together(reports, adjust)
    return reports


def _adjust_together(reports: list[CompareReport], method: str) -> None:
    """Adjust the raw p-values of all the reports' rows as one family and set each row's verdict from its adjusted
    p (a report alone: its own benchmarks and average)."""
    rows = [r for report in reports for r in report.family_rows()]
    adjusted = iter(adjusted_p([r.p_value for r in rows], method))
    for report in reports:
        family = [CompareRow(**{**asdict(r), "p_adjusted": q, "verdict": verdict(r.difference, q, report.alpha)})
                  for r, q in zip(report.family_rows(), adjusted)]
        report.rows = family[:len(report.rows)]
        report.average = family[-1] if report.average is not None else None
        report.family_size = len(rows) if len(reports) > 1 else None

