"""Suites of benchmarks as YAML: which lm-eval tasks, shots, headline metric and grouping make each benchmark.

A suite is a name (a file under suite/eval/suites/) or a path to a YAML file. Users add benchmarks and suites without
code: write a suite YAML (optionally `extends: openseek-mid-v1` to start from the card's suite) and list their own
lm-eval task folders under `include_paths` (relative to the YAML file). Field meanings are documented at the top of
suite/eval/suites/openseek-mid-v1.yaml.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from growth.foundation.errors import ConfigError

SUITES_DIR = Path(__file__).with_name("suites")
CATEGORIES = ("knowledge", "reasoning", "commonsense", "math", "stem", "code")
AGGREGATES = ("lm-eval", "mean")


@dataclass(frozen=True)
class TaskRef:
    """One lm-eval task or group of a benchmark and the result key ("metric,filter") read from it."""

    name: str
    metric: str
    filter: str = "none"


@dataclass(frozen=True)
class Benchmark:
    key: str
    title: str
    tasks: tuple[TaskRef, ...]
    num_fewshot: int
    metric: str
    filter: str = "none"
    aggregate: str = "lm-eval"
    category: str = "knowledge"
    in_avg_general: bool = False
    offline: bool = True
    code: bool = False
    version: int = 1
    include_paths: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        where = f"benchmark {self.key!r}"
        if not self.tasks:
            raise ConfigError(f"{where}: `tasks` must list at least one lm-eval task")
        if self.aggregate not in AGGREGATES:
            raise ConfigError(f"{where}: aggregate must be one of {', '.join(AGGREGATES)}, not {self.aggregate!r}")
        if self.aggregate == "lm-eval" and len(self.tasks) != 1:
            raise ConfigError(f"{where}: aggregate 'lm-eval' takes exactly one task or group; use 'mean' for "
                              f"{len(self.tasks)} tasks")
        if self.category not in CATEGORIES:
            raise ConfigError(f"{where}: category must be one of {', '.join(CATEGORIES)}, not {self.category!r}")
        if self.num_fewshot < 0:
            raise ConfigError(f"{where}: num_fewshot must be >= 0")

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def spec(self) -> dict[str, Any]:
        """What defines this benchmark's score (enters the config hash); include paths are hashed by content."""
        return {"key": self.key, "tasks": [(t.name, t.metric, t.filter) for t in self.tasks],
                "num_fewshot": self.num_fewshot, "metric": self.metric, "filter": self.filter,
                "aggregate": self.aggregate, "version": self.version}


@dataclass(frozen=True)
class Suite:
    name: str
    benchmarks: tuple[Benchmark, ...]
    description: str = ""
    source: Path | None = None
    _by_key: dict[str, Benchmark] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_key.update({b.key: b for b in self.benchmarks})

    @property
    def keys(self) -> list[str]:
        return [b.key for b in self.benchmarks]

    def get(self, key: str) -> Benchmark:
        if key not in self._by_key:
            close = list(dict.fromkeys([k for k in self.keys if k.startswith(key)]
                                       + difflib.get_close_matches(key, self.keys, n=3)))[:3]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown benchmark {key!r} in suite {self.name}.{hint} Available: {', '.join(self.keys)}")
        return self._by_key[key]

    def select(self, keys: list[str] | None) -> list[Benchmark]:
        """The named benchmarks in suite order (all when `keys` is empty); unknown names are a ConfigError."""
        if not keys:
            return list(self.benchmarks)
        wanted = {self.get(k).key for k in keys}
        return [b for b in self.benchmarks if b.key in wanted]


_BENCH_KEYS = {f.name for f in fields(Benchmark)} - {"key", "tasks", "include_paths"} | {"tasks"}
_SUITE_KEYS = {"name", "description", "extends", "include_paths", "benchmarks"}


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def _suite_file(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        return path
    candidate = SUITES_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    close = difflib.get_close_matches(str(name_or_path), suite_names(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown suite {str(name_or_path)!r}.{hint} Available: {', '.join(suite_names())} "
                      "(or pass a path to a suite .yaml)")


def _task_ref(raw: Any, metric: str, filter_: str, where: str) -> TaskRef:
    if isinstance(raw, str):
        return TaskRef(raw, metric, filter_)
    if isinstance(raw, dict) and set(raw) <= {"name", "metric", "filter"} and isinstance(raw.get("name"), str):
        return TaskRef(raw["name"], str(raw.get("metric", metric)), str(raw.get("filter", filter_)))
    raise ConfigError(f"{where}: each task must be a name or a mapping {{name, metric, filter}}, got {raw!r}")


def _benchmark(key: str, raw: Any, include_paths: tuple[Path, ...], where: str) -> Benchmark:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: benchmark {key!r} must be a mapping")
    unknown = sorted(set(raw) - _BENCH_KEYS)
    if unknown:
        raise ConfigError(f"{where}: benchmark {key!r} has unknown key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(_BENCH_KEYS))}")
    for required in ("title", "tasks", "num_fewshot", "metric"):
        if required not in raw:
            raise ConfigError(f"{where}: benchmark {key!r} is missing {required!r}")
    values = dict(raw)
    values.setdefault("filter", "none")
    tasks = values.pop("tasks")
    if not isinstance(tasks, list):
        raise ConfigError(f"{where}: benchmark {key!r}: `tasks` must be a list")
    refs = tuple(_task_ref(t, str(values["metric"]), str(values["filter"]), f"{where}: {key}") for t in tasks)
    try:
        return Benchmark(key=key, tasks=refs, include_paths=include_paths, **values)
    except TypeError as e:
        raise ConfigError(f"{where}: benchmark {key!r}: {e}") from None


def load_suite(name_or_path: str | Path = "openseek-mid-v1") -> Suite:
    """Read a suite by name (suite/eval/suites/<name>.yaml) or path; `extends` starts from another suite."""
    path = _suite_file(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"suite file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"suite file {path} must hold a mapping at the top level")
    unknown = sorted(set(raw) - _SUITE_KEYS)
    if unknown:
        raise ConfigError(f"suite file {path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_SUITE_KEYS))}")
    include = tuple((path.parent / p).resolve() for p in raw.get("include_paths") or [])
    for p in include:
        if not p.is_dir():
            raise ConfigError(f"suite file {path}: include path {p} is not a folder of lm-eval task YAMLs")
    benchmarks: dict[str, Benchmark] = {}
    if raw.get("extends"):
        if Path(str(raw["extends"])).resolve() == path.resolve() or raw["extends"] == path.stem:
            raise ConfigError(f"suite file {path} extends itself")
        benchmarks = {b.key: b for b in load_suite(raw["extends"]).benchmarks}
    entries = raw.get("benchmarks") or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"suite file {path}: `benchmarks` must be a mapping of key -> benchmark")
    for key, spec in entries.items():
        benchmarks[str(key)] = _benchmark(str(key), spec, include, str(path))
    if not benchmarks:
        raise ConfigError(f"suite file {path} defines no benchmarks")
    return Suite(name=str(raw.get("name") or path.stem), benchmarks=tuple(benchmarks.values()),
                 description=str(raw.get("description") or ""), source=path)
