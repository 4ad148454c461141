"""Reported scores: the evaluation tables of model cards, kept as YAML data in results/reported/.

A reported set is what a card says other models scored, with the settings it states (shots, CoT) and its source, so
`growbench leaderboard` can put measured runs beside it and `growbench regress` can gate a model against it. The
format is documented in results/README.md; a user adds a card by writing one more YAML file there (or anywhere, and
passing its path). Loading validates everything and rejects unknown keys, so a typo never silently drops a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.config import build, load_yaml
from growth.foundation.errors import ConfigError
from growth.foundation.registry import Shipped, suggestions

REPORTED_DIR = Path(__file__).with_name("reported")
REPORTED = Shipped("reported set", REPORTED_DIR, env="GROWBENCH_REPORTED_DIR")
"""The project's reported sets; $GROWBENCH_REPORTED_DIR (os.pathsep-separated) adds folders searched first."""
CARD_REPORTED = "openseek-mid-v1"
"""The reported set measured models stand beside by default: the OpenSeek-Mid-v1 card's table (a set of reported
scores, not the suite of the same name)."""


@dataclass(frozen=True)
class ReportedModel:
    name: str
    training_tokens: str | None  # as the card writes it, e.g. "36T"


@dataclass(frozen=True)
class ReportedRow:
    key: str  # benchmark key shared with the store and suite, e.g. "mmlu_pro"
    title: str  # the card's row label, e.g. "MMLU-Pro (5-shot CoT)"
    shots: int
    cot: bool
    metric: str
    scores: dict[str, float | None]  # model name -> score on the 0..100 scale, None when not reported


@dataclass(frozen=True)
class ReportedAverage:
    name: str  # e.g. "Avg General"
    benchmarks: tuple[str, ...]
    printed: dict[str, float] | None  # model name -> the card's printed value, if the file records it


@dataclass(frozen=True)
class ReportedSet:
    name: str
    title: str
    source: dict[str, str]
    suite: str | None
    subject: str | None  # the model the card is about: highlighted, and the default `regress` reference
    models: tuple[ReportedModel, ...]
    rows: tuple[ReportedRow, ...]
    averages: tuple[ReportedAverage, ...]
    path: Path

    def row(self, key: str) -> ReportedRow:
        for r in self.rows:
            if r.key == key:
                return r
        raise ConfigError(f"reported set {self.name!r} ({self.path}) has no row for benchmark {key!r}; "
                          f"it has {', '.join(r.key for r in self.rows)}")

    def require(self, keys: list[str], suite: str) -> None:
        """Every benchmark of the suite needs a row: a card that does not report one gets a row of nulls, so a
        missing benchmark is a decision written in the file, never an accident."""
        missing = [k for k in keys if k not in {r.key for r in self.rows}]
        if missing:
            raise ConfigError(f"reported set {self.name!r} ({self.path}) is missing benchmark(s) {', '.join(missing)} "
                              f"of suite {suite}; add rows (scores may be null)")

    def model(self, name: str | None) -> str:
        """The reported model called `name` (default: the subject), with 'did you mean' on a miss."""
        names = [m.name for m in self.models]
        name = name or self.subject
        if name is None:
            raise ConfigError(f"reported set {self.name!r} has no subject; name a model as reported:{self.name}:MODEL "
                              f"(one of {', '.join(names)})")
        if name not in names:
            close = suggestions(name, names)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ConfigError(f"reported set {self.name!r} has no model {name!r}; {hint}models: {', '.join(names)}")
        return name


def load_reported(name_or_path: str | Path) -> ReportedSet:
    """Load and validate a reported set by name (results/reported/NAME.yaml, or $GROWBENCH_REPORTED_DIR) or path."""
    path = REPORTED.resolve(name_or_path)
    return _parse(build(_SetFile, load_yaml(path), where=str(path)), path)


@dataclass
class _ModelFile:
    name: str
    training_tokens: str | None = None


@dataclass
class _RowFile:
    key: str
    title: str
    shots: int
    cot: bool
    metric: str
    scores: list[Any]

    def __post_init__(self) -> None:
        if self.shots < 0:
            raise ConfigError(f"benchmark {self.key!r}: shots must be a non-negative integer, got {self.shots!r}")


@dataclass
class _AverageFile:
    name: str
    benchmarks: list[str]
    printed: list[Any] | None = None


@dataclass
class _SetFile:
    """A reported set file's layout (results/README.md)."""

    name: str
    models: list[_ModelFile]
    benchmarks: list[_RowFile]
    title: str | None = None
    source: dict[str, str] = field(default_factory=dict)
    suite: str | None = None
    subject: str | None = None
    averages: list[_AverageFile] = field(default_factory=list)


def _per_model(values: Any, models: list[str], where: str, allow_null: bool) -> dict[str, float | None]:
    if not isinstance(values, list) or len(values) != len(models):
        raise ConfigError(f"{where}: expected a list of {len(models)} values, one per model ({', '.join(models)})")
    out: dict[str, float | None] = {}
    for model, v in zip(models, values):
        if v is None and allow_null:
            out[model] = None
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100:
            out[model] = float(v)
        else:
            raise ConfigError(f"{where}: value for {model} must be a number in 0..100"
                              f"{' or null' if allow_null else ''}, got {v!r}")
    return out


def _parse(top: _SetFile, path: Path) -> ReportedSet:
    if not top.models:
        raise ConfigError(f"{path}: models must be a non-empty list")
    models = [ReportedModel(m.name, m.training_tokens) for m in top.models]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: model names repeat: {', '.join(names)}")
    rows = [ReportedRow(r.key, r.title, r.shots, r.cot, r.metric,
                        _per_model(r.scores, names, f"{path}: benchmarks[{i}] ({r.key}) scores", allow_null=True))
            for i, r in enumerate(top.benchmarks)]
    keys = [r.key for r in rows]
    if not rows or len(set(keys)) != len(keys):
        raise ConfigError(f"{path}: benchmarks must be a non-empty list of distinct keys, got {', '.join(keys)}")
    averages = []
    for i, a in enumerate(top.averages):
        where = f"{path}: averages[{i}]"
        unknown = [k for k in a.benchmarks if k not in keys]
        if unknown:
            raise ConfigError(f"{where}: benchmark(s) {', '.join(map(str, unknown))} have no row in this set")
        averages.append(ReportedAverage(a.name, tuple(a.benchmarks), None if a.printed is None else
                                        _per_model(a.printed, names, f"{where} printed", allow_null=False)))
    if top.subject is not None and top.subject not in names:
        raise ConfigError(f"{path}: subject {top.subject!r} is not one of the models ({', '.join(names)})")
    return ReportedSet(name=top.name, title=top.title or top.name, source=top.source, suite=top.suite,
                       subject=top.subject, models=tuple(models), rows=tuple(rows), averages=tuple(averages),
                       path=path)
