"""Data efficiency of a growth study's arms: held-out loss against tokens, tokens-to-target and FLOPs.

    curve = LossCurve.of(start_losses, read_metrics(run_dir))       # (tokens, held-out loss) from 0 tokens on
    rows = efficiency(curves, flops_per_token, target="scratch")

The held-out loss of an arm at one evaluation is the mean over the data's sources of each source's held-out loss
(training/validation.py: every source holds out the same number of seq_len sequences, so this is also the per-token
mean over all held-out tokens). Tokens-to-target is the number of training tokens an arm needs to reach the target
arm's final held-out loss (the scratch control's, as the growth literature reports it): the first evaluation at or
below the target, linearly interpolated in tokens against the evaluation before it; an arm already at or below it
before training needs 0 tokens, and one that never gets there within the budget has not reached it (None). The ratio
is the target arm's tokens over the arm's (2.0: half the tokens of scratch). FLOPs are training FLOPs per token of
the arm's own model (training/throughput.py: 6 N + attention) times tokens, so arms of different sizes compare on
compute too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class LossCurve:
    """An arm's held-out loss at increasing token counts: the mean over sources, and each source's."""

    tokens: list[int]
    loss: list[float]
    sources: dict[str, list[float]]

    @classmethod
    def of(cls, start: Mapping[str, float], rows: Sequence[Mapping[str, Any]]) -> LossCurve:
        """The curve from the held-out loss per source before training (`start`, at 0 tokens) and the run's
        metrics.jsonl rows that carry `val_loss`."""
        points = [(0, dict(start))] + [(int(r["tokens"]), dict(r["val_loss"])) for r in rows if "val_loss" in r]
        names = sorted(points[0][1])
        for tokens, losses in points:
            if sorted(losses) != names:
                raise ValueError(f"held-out sources at {tokens} tokens are {sorted(losses)}, at the start {names}")
        return cls([t for t, _ in points], [sum(v.values()) / len(v) for _, v in points],
                   {n: [v[n] for _, v in points] for n in names})

    @property
    def start(self) -> float:
        return self.loss[0]

    @property
    def final(self) -> float:
        return self.loss[-1]


def tokens_to_target(curve: LossCurve, target: float) -> float | None:
    """Tokens at which the curve first reaches `target` (interpolated between evaluations), None if it never does."""
    for i, (tokens, loss) in enumerate(zip(curve.tokens, curve.loss)):
        if loss <= target:
            if i == 0:
                return 0.0
            t0, l0 = curve.tokens[i - 1], curve.loss[i - 1]
            return t0 + (l0 - target) / (l0 - loss) * (tokens - t0)
    return None


@dataclass(frozen=True)
class Efficiency:
    """One arm's row of the tokens-to-target table."""

    arm: str
    tokens: int
    """Tokens the arm trained on (the study's budget)."""
    flops: float
    """Training FLOPs of those tokens."""
    start: float
    final: float
    to_target: float | None
    """Tokens to reach the target loss (None: not reached)."""
    ratio: float | None
    """Target arm's tokens-to-target over this arm's (inf when this arm starts at or below it; None: not reached)."""
    flops_to_target: float | None


def efficiency(curves: Mapping[str, LossCurve], flops_per_token: Mapping[str, float], target: str
               ) -> tuple[float, list[Efficiency]]:
    """(the target loss: the `target` arm's final held-out loss, one row per arm in the curves' order)."""
    goal = curves[target].final
    reference = tokens_to_target(curves[target], goal)
    rows = []
    for arm, curve in curves.items():
        needed = tokens_to_target(curve, goal)
        ratio = None if needed is None or reference is None else float("inf") if needed == 0 else reference / needed
        rows.append(Efficiency(arm, curve.tokens[-1], flops_per_token[arm] * curve.tokens[-1], curve.start,
                               curve.final, needed, ratio, None if needed is None else flops_per_token[arm] * needed))
    return goal, rows
