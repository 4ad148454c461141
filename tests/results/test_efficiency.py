"""Tokens-to-target and the data-efficiency table, against hand-computed examples."""

from __future__ import annotations

import math

import pytest

from results.efficiency import LossCurve, efficiency, tokens_to_target


def curve(tokens: list[int], loss: list[float]) -> LossCurve:
    return LossCurve(tokens, loss, {"all": loss})


def test_tokens_to_target_interpolates_between_evaluations() -> None:
    c = curve([0, 100, 200, 300], [5.0, 3.0, 2.0, 1.5])
    assert tokens_to_target(c, 2.5) == pytest.approx(150.0)  # halfway from 3.0 at 100 to 2.0 at 200
    assert tokens_to_target(c, 2.0) == pytest.approx(200.0)  # reached exactly at an evaluation
    assert tokens_to_target(c, 1.75) == pytest.approx(250.0)
    assert tokens_to_target(c, 5.0) == 0.0  # at or below the target before training
    assert tokens_to_target(c, 1.0) is None  # never within the budget
    dip = curve([0, 100, 200, 300], [5.0, 2.0, 2.4, 1.9])
    assert tokens_to_target(dip, 2.2) == pytest.approx(100 * 2.8 / 3)  # the first crossing counts, not 2.4 -> 1.9


def test_the_table_against_a_hand_example() -> None:
    curves = {
        "card": curve([0, 100, 200, 300], [3.0, 2.7, 2.4, 2.0]),
        "scratch": curve([0, 100, 200, 300], [7.0, 5.0, 3.0, 2.5]),
        "seed": curve([0, 100, 200, 300], [2.4, 2.3, 2.2, 2.1]),
        "slow": curve([0, 100, 200, 300], [6.0, 5.0, 4.0, 3.0]),
    }
    per_token = {"card": 10.0, "scratch": 10.0, "seed": 4.0, "slow": 10.0}
    goal, rows = efficiency(curves, per_token, "scratch")
    by = {r.arm: r for r in rows}
    assert goal == 2.5 and [r.arm for r in rows] == list(curves)
    # card crosses 2.5 between 2.7 at 100 and 2.4 at 200: 100 + 0.2 / 0.3 x 100 tokens
    assert by["card"].to_target == pytest.approx(100 + 200 / 3)
    assert by["card"].ratio == pytest.approx(300 / (100 + 200 / 3))  # 1.8x
    assert by["card"].flops_to_target == pytest.approx(10 * (100 + 200 / 3)) and by["card"].flops == 3000
    assert by["scratch"].to_target == 300 and by["scratch"].ratio == 1.0
    assert by["seed"].to_target == 0.0 and math.isinf(by["seed"].ratio) and by["seed"].flops == 1200
    assert by["slow"].to_target is None and by["slow"].ratio is None and by["slow"].flops_to_target is None
    assert (by["card"].start, by["card"].final, by["card"].tokens) == (3.0, 2.0, 300)


def test_a_curve_from_the_start_and_the_metrics_rows() -> None:
    rows = [{"step": 1, "tokens": 64, "loss": 4.0},
            {"step": 2, "tokens": 128, "loss": 3.9, "val_loss": {"code": 3.0, "prose": 2.0}}]
    c = LossCurve.of({"prose": 4.0, "code": 6.0}, rows)
    assert c.tokens == [0, 128] and c.loss == [5.0, 2.5]
    assert c.sources == {"code": [6.0, 3.0], "prose": [4.0, 2.0]} and (c.start, c.final) == (5.0, 2.5)
    with pytest.raises(ValueError, match="held-out sources at 128 tokens"):
        LossCurve.of({"prose": 4.0}, rows)
