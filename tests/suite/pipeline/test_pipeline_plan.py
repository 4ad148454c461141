"""The pipeline's plan, built without weights: what the shipped configs will run, with and without a benchmark
mirror, and the eval section composed of the eval options and the sweep's distribution (declared once)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from suite.eval.options import Distribution, EvalConfig
from suite.pipeline.config import EvalSection, load_pipeline
from suite.pipeline.plan import describe, plan_pipeline


def test_the_eval_section_is_the_eval_options_and_the_distribution() -> None:
    declared = {f.name for f in fields(EvalSection)}
    assert {f.name for f in fields(EvalConfig)} | {f.name for f in fields(Distribution)} <= declared
    assert declared - {f.name for f in fields(EvalConfig)} - {f.name for f in fields(Distribution)} == {
        "offline_suite", "offline_limit", "seed_model"}
    with pytest.raises(ConfigError, match="unknown executor"):
        EvalSection(executor="slurm")


def test_the_tiny_plan_offline_and_with_a_mirror(tmp_path: Path) -> None:
    config = load_pipeline("tiny")
    plan = plan_pipeline(config, tmp_path / "w")
    ev, train = plan.eval, plan.train
    assert plan.suite_key == "tiny-builtin" and ev.offline and ev.options.limit == 200
    assert [b.key for b in ev.benchmarks] == ["tiny_arith_mc", "tiny_cloze", "tiny_arith_gen", "tiny_code"]
    assert train.steps == [32, 64, 96] and train.run_dir == tmp_path / "w" / "train"
    assert [m.name for m in ev.models] == ["tiny-seed", "tiny-width-expanded", "tiny-grown", "tiny-train@32",
                                           "tiny-train@64", "tiny-train@96", "tiny-final"]
    assert ev.jobs == 28 and plan.report.growth.model == "tiny-width-expanded"
    assert plan.report.growth.steps == ["untie", "width"] and plan.select.options.config is None
    assert "4 benchmarks x 7 models (seed, width-expanded, grown, 3 checkpoints, final) = 28 eval jobs" in \
        describe(plan)[8]

    mirrored = plan_pipeline(config, tmp_path / "w", data_dir=tmp_path)
    assert mirrored.suite_key == "openseek-mid-v1" and not mirrored.eval.offline
    assert mirrored.eval.options.limit == 8 and len(mirrored.eval.benchmarks) == 6
    assert mirrored.select.options.config.name == "tiny-anchors.yaml"


def test_a_seed_that_is_not_here_needs_its_config(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nseed: {path: /nowhere/seed}\ngrow: {plan: tiny}\ntrain: {config: tiny}\n")
    with pytest.raises(ConfigError, match="seed /nowhere/seed is not on this machine; give seed.config"):
        plan_pipeline(load_pipeline(bad), tmp_path)
