"""The pipeline config: one YAML file naming what each step of grow -> train -> sweep -> select -> merge -> report
uses. Shipped configs live in suite/pipeline/configs/ (`tiny`, `openseek-mid-v1`); a path to any YAML file works too.

Each section is a dataclass; unknown keys are errors. Paths inside the file resolve against the file's folder when
they exist there, else against the working directory (so a shipped config can name shipped data by a short path).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.config import build, load_yaml
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped

PIPELINES = Shipped("pipeline config", Path(__file__).with_name("configs"))


@dataclass
class SeedSection:
    path: str | None = None
    """The seed checkpoint (e.g. a local copy of Qwen3-4B-Base). Exactly one of path and fixture."""
    fixture: dict[str, Any] | None = None
    """Build the seed with the tiny-model factory: TinySpec fields (layers, hidden, ffn, heads, ...)."""
    config: str | None = None
    """The seed's config.json (a file, or a shipped name like qwen3-4b-base), for --dry-run when `path` is not on
    this machine."""

    def __post_init__(self) -> None:
        if (self.path is None) == (self.fixture is None):
            raise ConfigError("seed: give exactly one of `path` or `fixture`")


@dataclass
class GrowSection:
    plan: str
    """A shipped plan's name (growth/plans/) or a plan YAML file."""
    seed: int | None = None
    """Overrides the plan's noise/selection seed."""
    dtype: str | None = None
    """Output dtype (default: the seed's)."""
    verify: bool = False
    """Compare logits of seed and grown model after each step (loads both models: tiny scale only)."""


@dataclass
class TrainSection:
    config: str
    """A shipped train config's name (training/configs/) or a YAML file; `model` and `run_dir` are set by the
    pipeline (the grown model, WORKDIR/train)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Keys merged into the train config (nested mappings merge), e.g. {max_steps: 64, checkpoint: {every: 16}}."""


@dataclass
class EvalSection:
    suite: str = "openseek-mid-v1"
    """Suite name or YAML file. When no benchmark mirror is set and `offline_suite` is given, that suite is used."""
    offline_suite: str | None = None
    """Suite for machines with no mirror and no hub (the tiny config's generated `tiny-builtin` set)."""
    benchmarks: list[str] = field(default_factory=list)
    """Benchmark keys to run (default: the whole suite)."""
    limit: int | None = None
    """Documents per lm-eval task of `suite`; set for smoke runs only (recorded with every score)."""
    offline_limit: int | None = None
    """Documents per lm-eval task of `offline_suite` (None: all of them)."""
    backend: str | None = None
    """vllm or hf (default: vllm when importable)."""
    allow_code_execution: bool = False
    """Let code benchmarks run model-written code in the sandbox."""
    seed_model: bool = True
    """Also evaluate the seed and the grown model (the reference points the report compares the final model with),
    and, when the plan starts with function-preserving steps but is not all of them, the checkpoint those steps
    make (the grow step writes it: e.g. the card's width-expanded stage), whose scores must equal the seed's."""
    batch_size: int | str = "auto"
    """Engine batch size; a fixed number skips lm-eval's auto detection, which probes the full context length."""
    engine: dict[str, Any] = field(default_factory=dict)
    """Engine settings over the suite's (suite/eval/engine_settings.py), e.g. {tensor_parallel_size: 2,
    gpu_memory_utilization: 0.85, max_model_len: 4096}; unknown keys are errors."""
    executor: str = "local"
    """local (this machine: in-process, or `workers`/`devices`) or ray (tasks on a Ray cluster)."""
    workers: int | None = None
    """Local worker processes, one engine each (default: evaluate in the pipeline's process)."""
    devices: str | None = None
    """GPUs of the local workers, e.g. "0,1,2,3,4,5,6,7": one worker per tensor_parallel_size of them."""
    ray_address: str | None = None
    """The Ray cluster to join (auto, host:port); none: a local one."""

    def distribution(self) -> Any:
        """How the sweep spreads (suite/eval/sweep.py's Distribution, which checks these four fields together)."""
        from suite.eval.sweep import Distribution

        return Distribution(executor=self.executor, workers=self.workers, devices=self.devices,
                            ray_address=self.ray_address)


@dataclass
class SelectSection:
    strategy: str = "anchors"
    """anchors | greedy-soup | search."""
    config: str | None = None
    """The strategy's YAML (anchors roles, dev split, budget); default: the strategy's own for the suite."""
    limit: int | None = None
    """Dev-split documents per benchmark for strategies that evaluate merges."""


@dataclass
class ReportSection:
    reported: str = "openseek-mid-v1"
    """Reported set whose models stand beside the measured ones on the leaderboard and in regress."""
    abs_tol: float = 1.0
    """regress: absolute tolerance in points."""
    z: float = 2.0
    """regress: z-score tolerance (times the combined stderr)."""
    marks: str = "significance"
    """Leaderboard marks: significance (bold: the best and every score within noise of it) or value (the card's)."""


@dataclass
class PipelineConfig:
    name: str
    seed: SeedSection
    grow: GrowSection
    train: TrainSection
    eval: EvalSection = field(default_factory=EvalSection)
    select: SelectSection = field(default_factory=SelectSection)
    report: ReportSection = field(default_factory=ReportSection)
    description: str = ""
    source: Path | None = None
    """The file this config was read from (set by the loader)."""

    def resolve(self, value: str | None) -> str | None:
        """A path as written in the config: relative to the config file when it exists there, else as given."""
        if value is None or self.source is None:
            return value
        beside = self.source.parent / value
        return str(beside) if beside.exists() else value

    def section_hash(self, *names: str) -> str:
        """Hash of the named sections: a step is redone when the sections it depends on change."""
        data = {n: asdict(getattr(self, n)) for n in names}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_pipeline(name_or_path: str | Path) -> PipelineConfig:
    path = PIPELINES.resolve(name_or_path)
    data = load_yaml(path)
    data.pop("source", None)
    config = build(PipelineConfig, data, where=path.name)
    config.source = path.absolute()
    return config
