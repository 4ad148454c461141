"""The dev split that evaluating selector strategies (greedy-soup, search) score candidates on."""

from __future__ import annotations

import dataclasses

from growth.foundation.errors import ConfigError


@dataclasses.dataclass
class DevConfig:
    """The dev split greedy-soup and search score every candidate on: limited evals of a few benchmarks."""

    benchmarks: list[str] | None = None
    """Benchmark keys to average; None means every benchmark of the suite."""
    limit: int | None = 50
    """Documents per benchmark (lm-eval --limit); the dev split is the first `limit` documents."""
    backend: str | None = None
    """Evaluation backend (hf, vllm); None lets suite.eval.evaluate choose."""

    def __post_init__(self) -> None:
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ConfigError(f"dev.limit must be a positive integer, got {self.limit!r}")
        if self.benchmarks is not None and (not isinstance(self.benchmarks, list) or not self.benchmarks):
            raise ConfigError("dev.benchmarks must be a non-empty list of benchmark keys")
