"""What the growth did, from the store: the plan's steps with the parameters before and after each, the stages grown
from the seed, and whether the function-preserving stage scores exactly as the seed did, document by document.

    check = preservation(store, "tiny-width-expanded", "tiny-seed", suite="tiny-builtin")
    check.differ  # [] when every score and every stored per-document value equals the seed's

The pipeline's report step prints `check.sentence(...)` (results/evidence.py); the report page shows the same
check beside the plan's steps and each stage's scores (results/report.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from suite.store import Store
from suite.store.queries import ResultsError, picked_runs, reading, records, resolve_one


@dataclass(frozen=True)
class GrowthStep:
    """One step of a growth plan as growth.json records it."""

    op: str
    params: dict[str, Any]
    stage: str | None  # the plan's name for the stage this step completes
    preserving: bool  # the operator claims to keep the function (logits) unchanged with these parameters
    before: int | None
    after: int | None
    snr_db: float | None  # the mean measured signal-to-noise of the step's noised weights, when it added noise
    verified: dict[str, Any] | None  # growth/verify.py's check of the step (--verify), when it ran

    @property
    def settings(self) -> str:
        """The step's parameters in one short line: 'intermediate_size 512, noise hypercloning, snr_db 10'."""
        return ", ".join(f"{k} {v}" for k, v in self.params.items() if v is not None) or "—"


def growth_steps(growth: dict[str, Any]) -> list[GrowthStep]:
    """The steps of a model's growth.json (models.growth in the store), each with whether its operator claims to
    preserve the function (growth/plan.py reads the recorded plan)."""
    from growth.operators import OPERATORS
    from growth.plan import parse_plan

    planned = parse_plan(growth["plan"], "growth.json").steps
    out = []
    for step, config in zip(growth.get("steps") or [], planned):
        measured = [v for v in (step.get("snr_db_measured") or {}).values() if v is not None]
        out.append(GrowthStep(step.get("op", "?"), dict(step.get("params") or {}), config.stage,
                              bool(OPERATORS.get(config.op).preserves_function(config.params)),
                              step.get("num_parameters_before"),
                              step.get("num_parameters_after"), sum(measured) / len(measured) if measured else None,
                              step.get("verify")))
    return out


def grown_from(store: Store, seed_id: str) -> list[dict[str, Any]]:
    """The models grown directly from the seed (the function-preserving stage, the grown model), fewest parameters
    first, each with its growth.json parsed."""
    with reading(store) as con:
        rows = records(con.execute("SELECT * FROM models WHERE kind = 'grown' AND growth IS NOT NULL"))
    out = []
    for row in rows:
        growth = json.loads(row["growth"]) if isinstance(row["growth"], str) else row["growth"]
        if growth and (growth.get("source") or {}).get("fingerprint") == seed_id:
            out.append({**row, "growth": growth})
    return sorted(out, key=lambda m: m["growth"].get("num_parameters") or 0)


@dataclass(frozen=True)
class PreservedRow:
    """One benchmark: the model's and the seed's counted scores (points) and how many of the per-document values
    both stored differ."""

    benchmark: str
    model: float
    seed: float
    documents: int  # per-document values compared (0: none stored)
    differing: int

    @property
    def equal(self) -> bool:
        return self.model == self.seed and self.differing == 0


@dataclass
class Preservation:
    """A function-preserving stage against its seed, benchmark by benchmark."""

    model: str
    seed: str
    rows: list[PreservedRow] = field(default_factory=list)

    @property
    def differ(self) -> list[str]:
        """The benchmarks where a score or a per-document value differs."""
        return [r.benchmark for r in self.rows if not r.equal]

    @property
    def documents(self) -> int:
        return sum(r.documents for r in self.rows)

    def sentence(self, steps: list[str] | None = None) -> str:
        """The check in one line, as the console and the page print it."""
        claim = f"{self.model} (function-preserving steps: {', '.join(steps or ['every step'])})"
        if self.differ:
            return (f"{claim} differs from {self.seed} on {', '.join(self.differ)}: the growth did not preserve "
                    "the function")
        docs = (f"all {self.documents:,} per-document values equal" if self.documents else
                "no per-document values stored, scores compared only")
        return f"{claim} scores exactly as {self.seed} on every benchmark ({len(self.rows)}; {docs})"


def preservation(store: Store, model: str, seed: str, *, suite: str, pick: str = "latest") -> Preservation:
    """Compare the model's counted runs with the seed's: the stored scores exactly, and every per-document value
    both runs stored (a function-preserving growth must change none of them)."""
    from suite.eval.benchmarks import load_suite
    from suite.eval.paired_runs import BenchmarkSamples

    definition = load_suite(suite)
    with reading(store) as con:
        a, b = resolve_one(con, model), resolve_one(con, seed)
        runs_a = {r["benchmark"]: r for r in picked_runs(con, [a["model_id"]], suite=suite, pick=pick)}
        runs_b = {r["benchmark"]: r for r in picked_runs(con, [b["model_id"]], suite=suite, pick=pick)}
        shared = [k for k in definition.keys if k in runs_a and k in runs_b]
        if not shared:
            raise ResultsError(f"{a['name']} and {b['name']} share no evaluated benchmark in suite {suite}")
        check = Preservation(a["name"], b["name"])
        for key in shared:
            ra, rb = runs_a[key], runs_b[key]
            frame = BenchmarkSamples.load(con, definition.get(key), [ra["run_id"], rb["run_id"]]).frame
            cols = ["part", "task", "doc_id"]
            both = (frame[frame["run_id"] == ra["run_id"]][cols + ["value"]]
                    .merge(frame[frame["run_id"] == rb["run_id"]][cols + ["value"]], on=cols))
            check.rows.append(PreservedRow(key, 100 * ra["value"], 100 * rb["value"], len(both),
                                           int((both["value_x"] != both["value_y"]).sum())))
    return check
