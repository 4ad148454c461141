"""Reported scores: the evaluation tables of model cards, kept as YAML data in results/reported/.

A reported set is what a card says other models scored, with the settings it states (shots, CoT) and its source, so
`growbench leaderboard` can put measured runs beside it and `growbench regress` can gate a model against it. The
format is documented in results/README.md; a user adds a card by writing one more YAML file there (or anywhere, and
passing its path). Loading validates everything and rejects unknown keys, so a typo never silently drops a row.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from growth.foundation.errors import ConfigError

REPORTED_DIR = Path(__file__).with_name("reported")
"""The project's reported sets; $GROWBENCH_REPORTED_DIR (os.pathsep-separated) adds folders searched first."""

_TOP_KEYS = {"name", "title", "source", "suite", "subject", "models", "benchmarks", "averages"}
_MODEL_KEYS = {"name", "training_tokens"}
_ROW_KEYS = {"key", "title", "shots", "cot", "metric", "scores"}
_AVG_KEYS = {"name", "benchmarks", "printed"}


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
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ConfigError(f"reported set {self.name!r} has no model {name!r}; {hint}models: {', '.join(names)}")
        return name


def search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("GROWBENCH_REPORTED_DIR", "").split(os.pathsep) if p]
    return extra + [REPORTED_DIR]


def available() -> list[str]:
    """Names of the reported sets found in the search folders."""
    return sorted({p.stem for d in search_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def load_reported(name_or_path: str | Path) -> ReportedSet:
    """Load and validate a reported set by name (results/reported/NAME.yaml, or $GROWBENCH_REPORTED_DIR) or path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        found = [d / f"{name_or_path}.yaml" for d in search_dirs() if (d / f"{name_or_path}.yaml").is_file()]
        if not found:
            names = available()
            close = difflib.get_close_matches(str(name_or_path), names, n=3, cutoff=0.4)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ConfigError(f"no reported set {str(name_or_path)!r}; {hint}available: {', '.join(names) or 'none'} "
                              f"(folders: {', '.join(map(str, search_dirs()))})")
        path = found[0]
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return _parse(data, path)


def _mapping(obj: Any, keys: set[str], where: str, required: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(obj).__name__}")
    unknown = set(obj) - keys
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          f"allowed: {', '.join(sorted(keys))}")
    absent = required - set(obj)
    if absent:
        raise ConfigError(f"{where}: missing key(s) {', '.join(sorted(absent))}")
    return obj


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


def _parse(data: Any, path: Path) -> ReportedSet:
    top = _mapping(data, _TOP_KEYS, str(path), {"name", "models", "benchmarks"})
    if not isinstance(top["models"], list) or not top["models"]:
        raise ConfigError(f"{path}: models must be a non-empty list")
    models = []
    for i, m in enumerate(top["models"]):
        m = _mapping(m, _MODEL_KEYS, f"{path}: models[{i}]", {"name"})
        tokens = m.get("training_tokens")
        models.append(ReportedModel(str(m["name"]), None if tokens is None else str(tokens)))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: model names repeat: {', '.join(names)}")
    rows = []
    for i, r in enumerate(top["benchmarks"] or []):
        where = f"{path}: benchmarks[{i}]"
        r = _mapping(r, _ROW_KEYS, where, _ROW_KEYS)
        if not isinstance(r["shots"], int) or isinstance(r["shots"], bool) or r["shots"] < 0:
            raise ConfigError(f"{where}: shots must be a non-negative integer, got {r['shots']!r}")
        if not isinstance(r["cot"], bool):
            raise ConfigError(f"{where}: cot must be true or false, got {r['cot']!r}")
        rows.append(ReportedRow(str(r["key"]), str(r["title"]), r["shots"], r["cot"], str(r["metric"]),
                                _per_model(r["scores"], names, f"{where} ({r['key']}) scores", allow_null=True)))
    keys = [r.key for r in rows]
    if not rows or len(set(keys)) != len(keys):
        raise ConfigError(f"{path}: benchmarks must be a non-empty list of distinct keys, got {', '.join(keys)}")
    averages = []
    for i, a in enumerate(top.get("averages") or []):
        where = f"{path}: averages[{i}]"
        a = _mapping(a, _AVG_KEYS, where, {"name", "benchmarks"})
        unknown = [k for k in a["benchmarks"] if k not in keys]
        if unknown:
            raise ConfigError(f"{where}: benchmark(s) {', '.join(map(str, unknown))} have no row in this set")
        printed = a.get("printed")
        averages.append(ReportedAverage(str(a["name"]), tuple(a["benchmarks"]), None if printed is None else
                                        _per_model(printed, names, f"{where} printed", allow_null=False)))
    subject = top.get("subject")
    if subject is not None and subject not in names:
        raise ConfigError(f"{path}: subject {subject!r} is not one of the models ({', '.join(names)})")
    source = top.get("source") or {}
    if not isinstance(source, dict):
        raise ConfigError(f"{path}: source must be a mapping (url, document, ...)")
    return ReportedSet(name=str(top["name"]), title=str(top.get("title") or top["name"]),
                       source={str(k): str(v) for k, v in source.items()}, suite=top.get("suite"), subject=subject,
                       models=tuple(models), rows=tuple(rows), averages=tuple(averages), path=path)
