"""growbench's linear merge equals mergekit 0.1.5's `linear` (normalize false, dtype float32) on a tiny pair.

mergekit runs from its own venv as a subprocess (bench/setup_mergekit.sh installs it; $GROWBENCH_MERGEKIT
points elsewhere); without it this test skips and tests/growth/test_merge.py's numpy reference still checks
the math.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny
from growth.merge.execute import plan_merge, run_merge
from growth.merge.mergekit import find_mergekit, mergekit_yaml
from growth.merge.recipe import inline_recipe


def test_linear_equals_mergekit(tiny_model: Path, tmp_path: Path) -> None:
    mergekit = find_mergekit()
    if mergekit is None:
        pytest.skip("mergekit not installed: run bench/setup_mergekit.sh or set GROWBENCH_MERGEKIT")
    other = make_tiny(tmp_path / "other", TinySpec(seed=7))
    recipe = inline_recipe([f"{tiny_model}:0.35", f"{other}:0.65"], {"normalize": False}, dtype="float32")
    ours = Checkpoint.open(run_merge(plan_merge(recipe), tmp_path / "ours"))
    (tmp_path / "mergekit.yaml").write_text(mergekit_yaml(recipe))
    done = subprocess.run([str(mergekit), str(tmp_path / "mergekit.yaml"), str(tmp_path / "theirs")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = Checkpoint.open(tmp_path / "theirs")
    assert sorted(ours.names()) == sorted(theirs.names())
    diff = max((ours.read(n) - theirs.read(n)).abs().max().item() for n in ours.names())
    assert diff <= 1e-6
