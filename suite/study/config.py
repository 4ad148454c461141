"""The study config: one YAML file naming a seed, the growth plan, the training every arm shares, the eval suite and
the arms. Shipped studies live in suite/study/configs/ (`tiny`, `qwen3-0.6b-card`); a path to any YAML file works too.

Sections are the pipeline's (suite/pipeline/config.py: seed, grow, train, eval), extended where a study needs more: the
seed may be trained first (`seed.train`), the train section fixes the token budget of every arm (`train.tokens`) and
how an arm's training is launched (`train.torchrun`). Each arm says how it starts (grown by the study's plan with its
own `overrides`, or by another `plan`; `scratch`: the grown architecture from random init; `seed`: the seed itself,
trained on the same tokens; `checkpoint`: a model made elsewhere) and what it trains differently (`train`: optimizer,
schedule; never the data). An arm with `vary` stands for one arm per value. Unknown keys are errors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped
from suite.eval.multiplicity import ADJUSTMENTS
from suite.pipeline.config import ConfigFile, EvalSection, GrowSection, SeedSection, TrainSection

STUDIES = Shipped("study config", Path(__file__).with_name("configs"))
STARTS = ("grown", "scratch", "seed", "checkpoint")
SHARED_DATA = ("model", "run_dir", "run_id", "seq_len", "global_batch", "max_steps", "data")
"""Train keys an arm may not change: every arm trains on the same data stream for the same budget."""


@dataclass
class StudySeed(SeedSection):
    train: TrainSection | None = None
    """Train the seed first (a train config and overrides, e.g. {max_steps: 64}); its last checkpoint is the seed every
    arm starts from. A random seed makes every growth arm look like scratch; give it its own data (another data.seed
    draws other generated documents) rather than the arms' stream."""


@dataclass
class StudyTrain(TrainSection):
    tokens: int | None = None
    """The token budget of every arm (required): whole steps of seq_len x global_batch tokens."""
    torchrun: list[str] = field(default_factory=list)
    """torchrun arguments for each arm's training (e.g. [--nproc-per-node, "8"]; multi-node: --nnodes and a
    rendezvous endpoint); empty: in the study's own process."""

    def __post_init__(self) -> None:
        if self.tokens is None:
            raise ConfigError("train.tokens is required: the token budget every arm trains on")
        if self.tokens < 1:
            raise ConfigError(f"train.tokens must be positive, got {self.tokens}")


@dataclass
class Arm:
    name: str
    start: str = "grown"
    """grown (the seed grown by the plan), scratch (the grown architecture, random init), seed (no growth) or
    checkpoint (the model at `checkpoint`)."""
    plan: str | None = None
    """This arm's growth plan (a shipped name or a YAML file); default: the study's grow.plan."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Plan parameters to change, `<op or stage>.<parameter>: value` (width.snr_db: 20, depth.init: identity); for a
    scratch arm they shape the architecture."""
    vary: dict[str, list[Any]] = field(default_factory=dict)
    """Like overrides, a list of values per key: one arm per value (per combination), named <name>-<value>."""
    train: dict[str, Any] = field(default_factory=dict)
    """Train config keys this arm changes (optimizer: {muon: false}, schedule, ...); not the data or the budget."""
    checkpoint: str | None = None
    """start: checkpoint: the model to train (it must share the seed's tokenizer)."""
    description: str = ""

    def __post_init__(self) -> None:
        where = f"arm {self.name!r}"
        if self.start not in STARTS:
            raise ConfigError(f"{where}: start must be one of {', '.join(STARTS)}, got {self.start!r}")
        if (self.start == "checkpoint") != (self.checkpoint is not None):
            raise ConfigError(f"{where}: give `checkpoint` exactly when start is checkpoint")
        if self.start in ("seed", "checkpoint") and (self.overrides or self.vary or self.plan):
            raise ConfigError(f"{where}: start {self.start} grows nothing, so it takes no plan, overrides or vary")
        for key, values in self.vary.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: vary.{key} must be a non-empty list of values")
        shared = sorted(set(self.train) & set(SHARED_DATA))
        if shared:
            raise ConfigError(f"{where}: train.{shared[0]} is shared by every arm (the same data stream and budget); "
                              "set it in the study's train section")

    def expanded(self) -> list[Arm]:
        """This arm, or one arm per combination of its `vary` values."""
        if not self.vary:
            return [self]
        keys = list(self.vary)
        return [replace(self, name="-".join([self.name, *map(_label, values)]), vary={},
                        overrides={**self.overrides, **dict(zip(keys, values))})
                for values in itertools.product(*self.vary.values())]


def _label(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace(" ", "")


@dataclass
class CompareSection:
    against: list[str] = field(default_factory=lambda: ["scratch"])
    """Control arms every other arm is compared with, final checkpoint against final checkpoint."""
    alpha: float = 0.05
    adjust: str = "holm"
    """holm | bh | none, over every test of every pair at once."""

    def __post_init__(self) -> None:
        if self.adjust not in ADJUSTMENTS:
            raise ConfigError(f"compare.adjust must be one of {', '.join(ADJUSTMENTS)}, got {self.adjust!r}")
        if not 0.001 <= self.alpha <= 0.5:
            raise ConfigError(f"compare.alpha must be between 0.001 and 0.5, got {self.alpha}")


@dataclass
class DataSection:
    prepared: str | None = None
    """Prepared token data every arm reads (default: the train config's data.prepared, else WORKDIR/data). The study
    prepares it (`growbench data prepare`'s code: finished shards are kept, so data prepared before costs a check)."""
    workers: int | None = None
    """Processes that prepare it (default: one per core)."""


@dataclass
class StudyConfig(ConfigFile):
    name: str
    seed: StudySeed
    grow: GrowSection
    train: StudyTrain
    arms: list[Arm]
    eval: EvalSection = field(default_factory=EvalSection)
    data: DataSection = field(default_factory=DataSection)
    compare: CompareSection = field(default_factory=CompareSection)
    target: str = "scratch"
    """The arm whose final held-out loss is the target of tokens-to-target."""
    description: str = ""
    source: Path | None = None
    """The file this config was read from (set by the loader)."""

    def __post_init__(self) -> None:
        if not self.arms:
            raise ConfigError("a study needs at least one arm")
        arms = [arm for a in self.arms for arm in a.expanded()]
        seen: set[str] = set()
        for arm in arms:
            if arm.name in seen:
                raise ConfigError(f"two arms are named {arm.name!r}; arm names must be unique")
            seen.add(arm.name)
        self.arms = arms
        for name in [self.target, *self.compare.against]:
            if name not in seen:
                raise ConfigError(f"{name!r} (target or compare.against) names no arm; arms: "
                                  f"{', '.join(a.name for a in arms)}")


def load_study(name_or_path: str | Path) -> StudyConfig:
    return StudyConfig.read(STUDIES, name_or_path)
