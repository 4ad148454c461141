"""Suites of benchmarks as YAML: which lm-eval tasks, shots, headline metric and grouping make each benchmark.

A suite is a name (a file under suite/eval/suites/) or a path to a YAML file. Users add benchmarks and suites without
code: write a suite YAML (optionally `extends: openseek-mid-v1` to start from the card's suite) and list their own
lm-eval task folders under `include_paths` (relative to the YAML file). Field meanings are documented at the top of
suite/eval/suites/openseek-mid-v1.yaml. A suite may also carry `engine:` settings (suite/eval/engine_settings.py),
e.g. the context window its prompts need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.config import build, load_yaml
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped, unknown_message

DEFAULT_SUITE = "openseek-mid-v1"
"""The suite a command evaluates in when none is named: the model card's 14 benchmarks."""
CATEGORIES = ("knowledge", "reasoning", "commonsense", "math", "stem", "code")
AGGREGATES = ("lm-eval", "mean")


@dataclass(frozen=True)
class TaskRef:
    """One lm-eval task or group of a benchmark and the result key ("metric,filter") read from it."""

    name: str
    metric: str
    filter: str = "none"


@dataclass(frozen=True, kw_only=True)
class BenchmarkEntry:
    """One benchmark as written in a suite file (field meanings: the top of suites/openseek-mid-v1.yaml)."""

    title: str
    tasks: list[Any]
    """lm-eval task or group names; an entry may be a mapping {name, metric, filter}."""
    num_fewshot: int
    metric: str
    filter: str = "none"
    aggregate: str = "lm-eval"
    category: str = "knowledge"
    in_avg_general: bool = False
    offline: bool = True
    code: bool = False
    version: int = 1
    include_paths: list[str] = field(default_factory=list)
    """This benchmark's own lm-eval task folders, relative to the suite file (added to the suite's)."""


@dataclass(frozen=True, kw_only=True)
class Benchmark(BenchmarkEntry):
    """A suite's benchmark: its file entry, keyed, with tasks resolved and the suite's task folders."""

    key: str
    tasks: tuple[TaskRef, ...]
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
    engine: dict[str, Any] = field(default_factory=dict)  # engine settings for this suite (engine_settings.py)
    ref: str = ""
    """The name or path it was loaded by: a worker process or Ray task loads it by that (a shipped suite from its own
    install), not by this machine's absolute paths."""
    _by_key: dict[str, Benchmark] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_key.update({b.key: b for b in self.benchmarks})

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return load_suite, (self.ref or str(self.source),)

    @property
    def keys(self) -> list[str]:
        return [b.key for b in self.benchmarks]

    def get(self, key: str) -> Benchmark:
        if key not in self._by_key:
            raise ConfigError(unknown_message("benchmark", key, self.keys, where=f" in suite {self.name}"))
        return self._by_key[key]

    def select(self, keys: list[str] | None) -> list[Benchmark]:
        """The named benchmarks in suite order (all when `keys` is empty); unknown names are a ConfigError."""
        if not keys:
            return list(self.benchmarks)
        wanted = {self.get(k).key for k in keys}
        return [b for b in self.benchmarks if b.key in wanted]


@dataclass
class SuiteFile:
    """A suite file's top level."""

    name: str | None = None
    description: str = ""
    extends: str | None = None
    """Another suite (name or path) whose benchmarks this one starts from."""
    include_paths: list[str] = field(default_factory=list)
    """Folders of the user's own lm-eval task YAMLs, relative to the suite file."""
    engine: dict[str, Any] = field(default_factory=dict)
    """Engine settings for this suite's benchmarks (suite/eval/engine_settings.py), over the extended suite's."""
    benchmarks: dict[str, BenchmarkEntry] = field(default_factory=dict)


SUITES = Shipped("suite", Path(__file__).with_name("suites"))


def _task_ref(raw: Any, metric: str, filter_: str, where: str) -> TaskRef:
    if isinstance(raw, str):
        return TaskRef(raw, metric, filter_)
    if isinstance(raw, dict) and set(raw) <= {"name", "metric", "filter"} and isinstance(raw.get("name"), str):
        return TaskRef(raw["name"], str(raw.get("metric", metric)), str(raw.get("filter", filter_)))
    raise ConfigError(f"{where}: each task must be a name or a mapping {{name, metric, filter}}, got {raw!r}")


def _include_paths(raw: list[str], base: Path, where: str) -> tuple[Path, ...]:
    """Folders of lm-eval task YAMLs, relative to the suite file, each checked to exist."""
    paths = tuple((base / str(p)).resolve() for p in raw)
    for p in paths:
        if not p.is_dir():
            raise ConfigError(f"{where}: include path {p} is not a folder of lm-eval task YAMLs")
    return paths


def _benchmark(key: str, entry: BenchmarkEntry, include_paths: tuple[Path, ...], where: str, base: Path
               ) -> Benchmark:
    values = dataclasses.asdict(entry)
    own = _include_paths(values.pop("include_paths"), base, f"{where}: benchmark {key!r}")
    refs = tuple(_task_ref(r, entry.metric, entry.filter, f"{where}: {key}") for r in values.pop("tasks"))
    return Benchmark(key=key, tasks=refs, include_paths=tuple(dict.fromkeys(include_paths + own)), **values)


def as_suite(suite: str | Path | Suite) -> Suite:
    """A suite given by name or path, resolved; a Suite as it is (callers resolve once and pass the object down)."""
    return suite if isinstance(suite, Suite) else load_suite(suite)


def load_suite(name_or_path: str | Path = DEFAULT_SUITE) -> Suite:
    """Read a suite by name (suite/eval/suites/<name>.yaml) or path; `extends` starts from another suite."""
    path = SUITES.resolve(name_or_path)
    where = f"suite file {path}"
    raw = build(SuiteFile, load_yaml(path), where=where)
    include = _include_paths(raw.include_paths, path.parent, where)
    benchmarks: dict[str, Benchmark] = {}
    engine: dict[str, Any] = {}
    if raw.extends:
        if Path(raw.extends).resolve() == path.resolve() or raw.extends == path.stem:
            raise ConfigError(f"{where} extends itself")
        parent = load_suite(raw.extends)
        benchmarks, engine = {b.key: b for b in parent.benchmarks}, dict(parent.engine)
    engine.update(raw.engine)
    for key, entry in raw.benchmarks.items():
        benchmarks[key] = _benchmark(key, entry, include, where, path.parent)
    if not benchmarks:
        raise ConfigError(f"{where} defines no benchmarks")
    by_path = path == Path(str(name_or_path)).expanduser()  # a file path, not a shipped name
    return Suite(name=raw.name or path.stem, benchmarks=tuple(benchmarks.values()), description=raw.description,
                 source=path, engine=engine, ref=str(path.absolute()) if by_path else str(name_or_path))
