"""Shared fixtures: tiny real checkpoints built offline by the factory, once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny Qwen3 (4 layers, hidden 128, head_dim 32, tied): loads in transformers and vLLM."""
    from growth.fixture import make_tiny

    return make_tiny(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_sharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny model written as several shards with an index."""
    from growth.fixture import TinySpec, make_tiny

    return make_tiny(tmp_path_factory.mktemp("models") / "tiny-sharded", TinySpec(shard_size=400_000))


@pytest.fixture(scope="session")
def four_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training-run folder with four tiny checkpoints (steps 10..40, own seeds, so four fingerprints)."""
    import json

    from growth.fixture import TinySpec, make_tiny

    run = tmp_path_factory.mktemp("run4")
    for step in (10, 20, 30, 40):
        ckpt = make_tiny(run / "checkpoints" / f"step-{step:06d}", TinySpec(seed=step))
        (ckpt / "training.json").write_text(json.dumps({"run_id": "r4", "step": step, "tokens": step * 1000}))
    return run


@pytest.fixture(scope="session")
def benchmark_mirror() -> Path:
    """The real benchmark data in ../shared/benchmarks; tests that need it skip where it is absent."""
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"benchmark mirror {SHARED_BENCHMARKS} not present")
    return SHARED_BENCHMARKS


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """Run `growbench ARGS...` in this process, as the console script does; returns the exit code."""
    from suite.cli import main

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["growbench", *args])
        try:
            main()
        except SystemExit as e:
            return int(e.code or 0)
        return 0

    return run


@pytest.fixture
def store(tmp_path: Path):
    """An empty DuckDB store in a temp folder."""
    from suite.store import Store

    return Store(tmp_path / "results.duckdb")
