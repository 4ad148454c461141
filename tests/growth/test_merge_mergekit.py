"""growbench's linear merge writes exactly mergekit 0.1.5's `linear` bytes (normalize false, fp32 arithmetic).

Five tiny checkpoints with the card's merge weights (0.30/0.25/0.15/0.15/0.15), out in float32 and in bfloat16,
through growbench's parallel chunked merge (several workers, chunks that cut tensors): every tensor must be
bit-identical to mergekit's. mergekit runs from its own venv as a subprocess (bench/setup_mergekit.sh installs
it; $GROWBENCH_MERGEKIT points elsewhere); without it this test skips and tests/growth/test_merge.py's numpy
reference still checks the math.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny
from growth.merge import execute
from growth.merge.execute import plan_merge, run_merge
from growth.merge.mergekit import find_mergekit, mergekit_yaml
from growth.merge.recipe import inline_recipe

WEIGHTS = (0.30, 0.25, 0.15, 0.15, 0.15)


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> list[Path]:
    d = tmp_path_factory.mktemp("mergekit-inputs")
    return [tiny_model] + [make_tiny(d / f"s{i}", TinySpec(seed=i)) for i in range(1, 5)]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_linear_is_bit_identical_to_mergekit(five: list[Path], tmp_path: Path, dtype: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mergekit = find_mergekit()
    if mergekit is None:
        pytest.skip("mergekit not installed: run bench/setup_mergekit.sh or set GROWBENCH_MERGEKIT")
    monkeypatch.setattr(execute, "CHUNK_ELEMENTS", 5000)
    recipe = inline_recipe([f"{p}:{w}" for p, w in zip(five, WEIGHTS)], {"normalize": False}, dtype=dtype)
    ours = Checkpoint.open(run_merge(plan_merge(recipe), tmp_path / "ours", workers=3))
    (tmp_path / "mergekit.yaml").write_text(mergekit_yaml(recipe))
    done = subprocess.run([str(mergekit), str(tmp_path / "mergekit.yaml"), str(tmp_path / "theirs")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = Checkpoint.open(tmp_path / "theirs")
    assert sorted(ours.names()) == sorted(theirs.names())
    for name in ours.names():
        a, b = ours.read(name), theirs.read(name)
        assert a.dtype == b.dtype == getattr(torch, dtype)
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), name
