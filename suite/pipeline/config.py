"""The pipeline config: one YAML file naming what each step of grow -> train -> sweep -> select -> merge -> report
uses. Shipped configs live in suite/pipeline/configs/ (`tiny`, `openseek-mid-v1`); a path to any YAML file works too.

Each section is a dataclass; unknown keys are errors. Paths inside the file resolve against the file's folder when
they exist there, else against the working directory (so a shipped config can name shipped data by a short path).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from growth.foundation.config import build, load_yaml
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped
from results.reported_scores import CARD_REPORTED
from suite.eval.options import Distribution, EvalConfig, EvalOptions

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


@dataclass(frozen=True, kw_only=True)
class EvalSection(EvalConfig, Distribution):
    """The eval steps' settings: EvalConfig's fields (suite, benchmarks, limit, backend, batch_size, engine, ...;
    suite/eval/options.py), Distribution's (executor, workers, devices, ray_address, retries) and the keys below."""

    offline_suite: str | None = None
    """Suite for machines with no benchmark mirror and no hub (the tiny config's generated `tiny-builtin` set): with
    no mirror set, it runs instead of `suite`, all of its benchmarks, `offline_limit` documents per task."""
    offline_limit: int | None = None
    """Documents per lm-eval task of `offline_suite` (None: all of them)."""
    seed_model: bool = True
    """Also evaluate the seed and the grown model (the reference points the report compares the final model with),
    and, when the plan starts with function-preserving steps but is not all of them, the checkpoint those steps
    make (the grow step writes it: e.g. the card's width-expanded stage), whose scores must equal the seed's."""

    def __post_init__(self) -> None:
        EvalConfig.__post_init__(self)
        Distribution.__post_init__(self)

    def offline(self, data_dir: Path | None) -> bool:
        """Whether the eval steps run `offline_suite`: there is one and no benchmark mirror (`data_dir`)."""
        return data_dir is None and self.offline_suite is not None

    def suite_for(self, data_dir: Path | None) -> str:
        """The suite the eval steps run, as the config names it."""
        return self.offline_suite if self.offline(data_dir) else self.suite

    def options(self, data_dir: Path | None) -> EvalOptions:
        """The eval steps' options on a machine with (or without) a benchmark mirror."""
        config = {f.name: getattr(self, f.name) for f in fields(EvalConfig)}
        if self.offline(data_dir):
            config.update(suite=self.offline_suite, limit=self.offline_limit, benchmarks=())
        return EvalOptions(**config, data_dir=data_dir)

    def distribution(self) -> Distribution:
        """How the sweep spreads (checked as the sweep checks it)."""
        return Distribution(**{f.name: getattr(self, f.name) for f in fields(Distribution)})


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
    reported: str = CARD_REPORTED
    """Reported set whose models stand beside the measured ones on the leaderboard and in regress."""
    abs_tol: float = 1.0
    """regress: absolute tolerance in points."""
    z: float = 2.0
    """regress: z-score tolerance (times the combined stderr)."""
    marks: str = "significance"
    """Leaderboard marks: significance (bold: the best and every score within noise of it) or value (the card's)."""


class ConfigFile:
    """What a config read from a YAML file (`source`) offers its steps: paths resolved beside the file, and hashes of
    its sections for the markers that make runs resumable."""

    source: Path | None

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

    @classmethod
    def read(cls, shipped: Shipped, name_or_path: str | Path) -> Any:
        """A shipped config by name or a YAML file, built as `cls` (unknown keys are errors), its source recorded."""
        path = shipped.resolve(name_or_path)
        data = load_yaml(path)
        data.pop("source", None)
        config = build(cls, data, where=path.name)
        config.source = path.absolute()
        return config


@dataclass
class PipelineConfig(ConfigFile):
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


def load_pipeline(name_or_path: str | Path) -> PipelineConfig:
    return PipelineConfig.read(PIPELINES, name_or_path)
