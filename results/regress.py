"""Regression checks: is a model's measured score within noise of a reference, benchmark by benchmark?

The reference is a reported score (`reported:NAME[:MODEL]`, default model = the card's subject) or another model's
measured run (`model:M2`). Per benchmark: delta = measured - reference (points, x100 scale); stderr = lm-eval's
standard error of the measured run, or sqrt(s1^2 + s2^2) for two measured runs (a reported score has none);
z = delta / stderr. A benchmark passes when |delta| <= max(abs_tol, z_threshold * stderr): a drop smaller than the
measurement noise (or than the tolerance) is not a regression. Comparing unlike settings (5-shot against 0-shot, a
--limit subset against a full run, another metric) is refused unless `allow_mismatch`, because such a delta means
nothing. A benchmark without a score on both sides is reported as missing (JUnit: skipped) and does not fail the
check; naming it with `benchmarks` makes its absence an error instead. The CLI turns the report into a table, JSON
and JUnit XML and exits 0 (all pass) or 1 (a regression).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any

from results.measured import picked_scores
from results.reported_scores import load_reported
from suite.eval.benchmarks import DEFAULT_SUITE
from suite.store import Store
from suite.store.queries import ResultsError, reading, resolve_one


@dataclass(frozen=True)
class Comparison:
    benchmark: str
    measured: float | None
    reference: float | None
    delta: float | None
    stderr: float | None
    z: float | None
    threshold: float | None
    status: str  # pass | fail | missing
    settings: str  # e.g. "5-shot, full" or the mismatch that was allowed


@dataclass
class RegressReport:
    model: str
    against: str
    abs_tol: float
    z: float
    pick: str
    results: list[Comparison] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # allowed with allow_mismatch; empty otherwise

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "against": self.against, "abs_tol": self.abs_tol, "z": self.z,
                "pick": self.pick, "passed": self.passed, "mismatches_allowed": self.mismatches,
                "results": [asdict(c) for c in self.results]}


def _settings(shots: Any, limit: Any, metric: Any) -> dict[str, Any]:
    return {"shots": shots, "limit": limit, "metric": metric}


def _describe(s: dict[str, Any]) -> str:
    shots = "?-shot" if s["shots"] is None else f"{s['shots']}-shot"
    return f"{shots}, {'full' if s['limit'] is None else 'limit ' + str(s['limit'])}, {s['metric'] or '?'}"


def _mismatch(key: str, mine: dict[str, Any], ref: dict[str, Any]) -> str | None:
    """Why the two settings differ, or None; an unknown shot count or metric is not a mismatch."""
    reasons = []
    if mine["shots"] is not None and ref["shots"] is not None and mine["shots"] != ref["shots"]:
        reasons.append(f"{mine['shots']}-shot vs {ref['shots']}-shot")
    if mine["limit"] != ref["limit"]:
        reasons.append(f"{'--limit ' + str(mine['limit']) if mine['limit'] else 'full'} vs "
                       f"{'--limit ' + str(ref['limit']) if ref['limit'] else 'full'}")
    if mine["metric"] and ref["metric"] and mine["metric"] != ref["metric"]:
        reasons.append(f"metric {mine['metric']} vs {ref['metric']}")
    return f"{key}: {'; '.join(reasons)}" if reasons else None


def _reference(con: Any, against: str, suite: str | None, pick: str, target: dict[str, Any]
               ) -> tuple[str, dict[str, dict[str, Any]]]:
    """(label, {benchmark: {value, stderr, settings}}) for `reported:NAME[:MODEL]` or `model:M2` (not `target`)."""
    kind, _, rest = against.partition(":")
    if kind == "reported" and rest:
        name, _, model = rest.partition(":")
        reported = load_reported(name)
        model = reported.model(model or None)
        return f"{model} (reported, {reported.name})", {
            r.key: {"value": r.scores[model], "stderr": None, "settings": _settings(r.shots, None, r.metric)}
            for r in reported.rows}
    if kind == "model" and rest:
        ref = resolve_one(con, rest)
        if ref["model_id"] == target["model_id"]:
            raise ResultsError(f"--against {against!r} is the model under test ({ref['name']}); name another model")
        picked = picked_scores(con, [ref["model_id"]], suite=suite, pick=pick)
        return ref["name"], {rec["benchmark"]: {"value": rec["value"], "stderr": rec["stderr"],
                                                "settings": _settings(rec["num_fewshot"], rec["limit_n"],
                                                                      rec["metric"])}
                             for rec in picked}
    raise ResultsError(f"--against {against!r}: use reported:NAME[:MODEL] (e.g. reported:openseek-mid-v1) "
                       "or model:NAME")


def regress(store: Store, model: str, against: str, *, abs_tol: float = 1.0, z: float = 2.0, pick: str = "latest",
            suite: str | None = DEFAULT_SUITE, benchmarks: list[str] | None = None,
            allow_mismatch: bool = False) -> RegressReport:
    """Compare `model`'s picked runs with the reference; raises on a mismatch unless allowed, or nothing to compare."""
    if abs_tol < 0 or z < 0:
        raise ResultsError(f"--abs-tol and --z must be >= 0 (got {abs_tol}, {z})")
    with reading(store) as con:
        target = resolve_one(con, model)
        label, reference = _reference(con, against, suite, pick, target)
        measured = {rec["benchmark"]: rec for rec in
                    picked_scores(con, [target["model_id"]], suite=suite, pick=pick)}
    keys = benchmarks or list(reference) or sorted(measured)
    if benchmarks:
        absent = [k for k in benchmarks if k not in measured or reference.get(k, {}).get("value") is None]
        if absent:
            raise ResultsError(f"no score to compare for {', '.join(absent)} ({target['name']} vs {label}); "
                               f"comparable: {', '.join(k for k in reference if k in measured) or 'none'}")
    report = RegressReport(target["name"], label, abs_tol, z, pick)
    mismatches = []
    for key in keys:
        mine, ref = measured.get(key), reference.get(key)
        if mine is None or ref is None or ref["value"] is None:
            report.results.append(Comparison(key, None if mine is None else float(mine["value"]),
                                             None if ref is None else ref["value"], None, None, None, None,
                                             "missing", "no measured run" if mine is None else "no reference"))
            continue
        settings = _settings(mine["num_fewshot"], mine["limit_n"], mine["metric"])
        why = _mismatch(key, settings, ref["settings"])
        if why:
            mismatches.append(why)
        errors = [float(s) for s in (mine["stderr"], ref["stderr"]) if s is not None]
        stderr = math.sqrt(sum(s * s for s in errors)) if errors else None
        delta = float(mine["value"]) - float(ref["value"])
        threshold = max(abs_tol, z * stderr) if stderr else abs_tol
        report.results.append(Comparison(
            key, float(mine["value"]), float(ref["value"]), delta, stderr, delta / stderr if stderr else None,
            threshold, "pass" if abs(delta) <= threshold + 1e-9 else "fail", why or _describe(settings)))
    if mismatches and not allow_mismatch:
        raise ResultsError(f"refusing to compare unlike settings ({'; '.join(mismatches)}); "
                           "re-run with matching settings or pass --allow-mismatch")
    report.mismatches = mismatches
    if all(c.status == "missing" for c in report.results):
        raise ResultsError(f"nothing to compare: {target['name']} has no finished run on any benchmark of {label}")
    return report


def to_junit(report: RegressReport) -> str:
    """JUnit XML for CI: one testcase per benchmark; a regression is a failure, a missing score is skipped."""
    failures = sum(c.status == "fail" for c in report.results)
    skipped = sum(c.status == "missing" for c in report.results)
    suite = ET.Element("testsuite", name="growbench.regress", tests=str(len(report.results)),
                       failures=str(failures), skipped=str(skipped), errors="0")
    for c in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"regress.{report.model}", name=c.benchmark, time="0")
        if c.status == "fail":
            ET.SubElement(case, "failure", message=f"{c.benchmark}: {c.measured:.2f} vs {c.reference:.2f} "
                          f"(delta {c.delta:+.2f}) exceeds {c.threshold:.2f}; {c.settings}")
        elif c.status == "missing":
            ET.SubElement(case, "skipped", message=f"{c.benchmark}: {c.settings}")
    root = ET.Element("testsuites", name=f"{report.model} vs {report.against}")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
