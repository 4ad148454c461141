"""Strategy configs: YAML mappings -> dataclasses, rejecting unknown keys and naming the field to fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from growth.errors import ConfigError
from growth.plan import from_mapping as plan_from_mapping

T = TypeVar("T")


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {path} ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from `data` (None: all defaults), rejecting unknown keys (growth.plan's)."""
    return plan_from_mapping(cls, {} if data is None else data, where)


@dataclasses.dataclass
class DevConfig:
    """The dev split greedy-soup and search score every candidate on: limited evals of a few benchmarks."""

    benchmarks: list[str] | None = None
    """Benchmark keys to average; None means every benchmark of the suite."""
    limit: int | None = 50
    """Documents per benchmark (lm-eval --limit); the dev split is the first `limit` documents."""
    backend: str | None = None
    """Evaluation backend (hf, vllm); None lets suite.evaluate choose."""

    def __post_init__(self) -> None:
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ConfigError(f"dev.limit must be a positive integer, got {self.limit!r}")
        if self.benchmarks is not None and (not isinstance(self.benchmarks, list) or not self.benchmarks):
            raise ConfigError("dev.benchmarks must be a non-empty list of benchmark keys")
