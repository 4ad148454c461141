"""What a run's scores rest on, as text: documents and standard error per model and benchmark, whether the function-
preserving growth steps left every score and per-document value unchanged, and whether the merge helped (the final
model paired against the seed, the best single checkpoint and each merge parent, one family of tests).

    write_evidence(store, Path("runs/tiny/report"), suite="tiny-builtin", models=[...], final="tiny-final",
                   seed="tiny-seed", growth=GrowthClaim("tiny-width-expanded", ["untie", "width"]))

The pipeline's report step writes it (evidence.md, final_vs_seed.json) and prints its lines; the report page shows
the same facts from the store (results/report.py), with the same numbers (results/numbers.py) and verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growth.foundation.atomic import write_json, write_text
from suite.store import Store


@dataclass(frozen=True)
class GrowthClaim:
    """A grown checkpoint whose growth steps claim to preserve the function: it must score exactly as the seed."""

    model: str
    steps: list[str] | None = None
    """The claimed steps (None: every step of the plan)."""


def write_evidence(store: Store, out: Path, *, suite: str, models: list[str], final: str, seed: str | None = None,
                   growth: GrowthClaim | None = None) -> dict[str, Any]:
    """The precision lines of `models`; with a `seed`, also the growth check and whether the merge helped,
    written to OUT/evidence.md and OUT/final_vs_seed.json (every comparison of the family). Returns the lines and
    the files' paths."""
    from results.growth_check import preservation
    from results.helped import did_it_help
    from results.measured import precision_lines
    from suite.store.queries import reading, resolve_models

    with reading(store) as con:
        lines = precision_lines(con, resolve_models(con, models), suite)
    outputs: dict[str, Any] = {"precision": lines}
    if seed is None:
        return outputs
    if growth is not None:
        outputs["growth_check"] = preservation(store, growth.model, seed, suite=suite).sentence(growth.steps)
    helped = did_it_help(store, final, seed=seed, suite=suite)
    write_json(out / "final_vs_seed.json", {"best_single_checkpoint": helped.best_rule,
                                            "comparisons": [r.to_dict() for r in helped.reports]})
    outputs["final_vs_seed"] = helped.lines()
    details = [line for base, report in zip(helped.baselines, helped.reports) for line in
               [f"## {report.model_a} vs {base.name} ({', '.join(base.roles)})", "",
                *[f"- {x}" for x in report.lines()], ""]]
    write_text(out / "evidence.md", "\n".join(
        ["# What the scores rest on", "", "```", *lines, "```", "", f"Growth: {outputs.get('growth_check', '-')}",
         "", f"# Did the merge help? {final}, paired over the same documents", "",
         f"Best single checkpoint: {helped.best_rule or '-'}.", "", *details]))
    outputs["evidence"] = str(out / "evidence.md")
    return outputs
