"""What a run's scores rest on, as text: documents and standard error per model and benchmark, whether the function-
preserving growth steps left every score unchanged, and the paired test of the final model against the seed.

    write_evidence(store, Path("runs/tiny/report"), suite="tiny-builtin", models=[...], final="tiny-final",
                   seed="tiny-seed", growth=GrowthClaim("tiny-width-expanded", ["untie", "width"]))

The pipeline's report step writes it (evidence.md, final_vs_seed.json) and prints its lines; the report page shows
the same facts from the store (results/report.py).
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
    """The precision lines of `models`; with a `seed`, also the growth check and the final model against the seed,
    written to OUT/evidence.md and OUT/final_vs_seed.json. Returns the lines and the files' paths."""
    from results.compare import compare, same_scores
    from results.measured import precision_lines
    from suite.store.queries import reading, resolve_models

    with reading(store) as con:
        lines = precision_lines(con, resolve_models(con, models), suite)
    outputs: dict[str, Any] = {"precision": lines}
    if seed is None:
        return outputs
    if growth is not None:
        differ = same_scores(store, growth.model, seed, suite=suite)
        steps = ", ".join(growth.steps or ["every step"])
        outputs["growth_check"] = (
            f"{growth.model} (function-preserving steps: {steps}) scores exactly as {seed} on every benchmark"
            if not differ else
            f"{growth.model} (function-preserving steps: {steps}) differs from {seed} on {', '.join(differ)}: "
            "the growth did not preserve the function")
    report = compare(store, final, seed, suite=suite)
    write_json(out / "final_vs_seed.json", report.to_dict())
    outputs["final_vs_seed"] = report.short_lines()
    write_text(out / "evidence.md", "\n".join(
        ["# What the scores rest on", "", "```", *lines, "```", "", f"Growth: {outputs.get('growth_check', '-')}",
         "", f"# {report.model_a} vs {report.model_b}, paired over the same documents", "",
         *[f"- {line}" for line in report.lines()], ""]))
    outputs["evidence"] = str(out / "evidence.md")
    return outputs
