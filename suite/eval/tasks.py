"""lm-eval tasks for a set of benchmarks, read from the local data mirror when one is set, and proven to be.

Offline, every leaf task of a benchmark gets a derived YAML written at run time: it `include`s the built-in (or the
user's) task YAML under the same task name and replaces only the data source (`dataset_path: json`, `data_files`
from suite.eval.mirror.resolve). lm-eval skips a YAML that fails to load without a word and then runs the built-in hub
task instead, so after building, every leaf is checked to carry exactly the derived data files; anything else is a
DataError. A benchmark whose dataset has no folder in the mirror is *unavailable* (reported, never scored); a
mirror folder lacking a split the task needs is an error that names the expected file. Online (no mirror) the
tasks are lm-eval's own.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from growth.foundation.errors import ConfigError, DataError
from suite.eval import mirror
from suite.eval.benchmarks import Benchmark

_SPLIT_KEYS = ("test_split", "validation_split", "training_split", "fewshot_split")


class DataUnavailable(DataError):
    """The data a benchmark needs is not what the source holds (e.g. EvalPlus tests absent): it is reported
    unavailable, never scored on something else."""


@dataclass
class LeafPlan:
    """One leaf lm-eval task: where its YAML came from and, offline, the local files it must read."""

    name: str
    yaml_path: Path | None
    data_files: dict[str, str] | None = None  # None: not derived (online, or the task already reads local files)


@dataclass
class BenchmarkTasks:
    benchmark: Benchmark
    leaves: list[LeafPlan] = field(default_factory=list)
    roots: dict[str, list[str]] = field(default_factory=dict)  # suite task name -> its leaf task names
    unavailable: str | None = None  # why the benchmark cannot run offline

    @property
    def available(self) -> bool:
        return self.unavailable is None


@cache
def _base_index(include_paths: tuple[str, ...]) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks._index import TaskIndex

    return TaskIndex.build([Path(lm_eval.__file__).parent / "tasks", *map(Path, include_paths)])


def _leaves(index: dict[str, Any], name: str, seen: tuple[str, ...] = ()) -> list[Any]:
    """Expand a task, group or tag name to its leaf task index entries, as lm-eval would."""
    from lm_eval.tasks._index import Kind

    entry = index.get(name)
    if entry is None:
        raise ConfigError(f"lm-eval 0.4.13 has no task, group or tag named {name!r} (check the suite file, or add "
                          "the folder holding it under include_paths)")
    if name in seen:
        raise ConfigError(f"lm-eval group {name!r} contains itself")
    if entry.kind in (Kind.TASK, Kind.PY_TASK):
        return [entry]
    children = sorted(entry.tags) if entry.kind == Kind.TAG else (entry.cfg or {}).get("task", [])
    out = []
    for child in children if isinstance(children, list) else [children]:
        if not isinstance(child, str):
            raise ConfigError(f"lm-eval group {name!r} defines a sub-task inline; growbench can only derive "
                              "offline tasks from named ones")
        out += _leaves(index, child, seen + (name,))
    return out


def _declared_splits(cfg: dict[str, Any]) -> dict[str, str]:
    splits = {k: cfg[k] for k in _SPLIT_KEYS if cfg.get(k)}
    fewshot = cfg.get("fewshot_config")
    if isinstance(fewshot, dict) and fewshot.get("split"):
        splits["fewshot_config.split"] = fewshot["split"]
    return splits


def _derive(entry: Any, root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The override YAML for one leaf (None when it needs none), or the reason it has no local data."""
    cfg = entry.cfg or {}
    dataset, config = cfg.get("dataset_path"), cfg.get("dataset_name")
    if not dataset or dataset in ("json", "csv", "parquet", "text") or Path(str(dataset)).exists():
        return None, None  # already local (a user's task reading its own files) or a Python task
    if not any(d.is_dir() for d in mirror.dataset_dirs(root, dataset, config)):
        return None, f"no local data for {dataset} ({config or 'default'}) in {root}"
    available = mirror.resolve(root, dataset, config)
    declared = _declared_splits(cfg)
    fewshot = cfg.get("fewshot_config") if isinstance(cfg.get("fewshot_config"), dict) else {}
    override: dict[str, Any] = {"include": str(entry.yaml_path), "task": entry.name, "tag": None,
                                "dataset_path": "json", "dataset_name": None}
    for key, split in declared.items():
        if split in available:
            continue
        if key == "training_split" and (fewshot.get("samples") is not None or cfg.get("fewshot_split") in available):
            override["training_split"] = None  # the few-shot examples come from elsewhere
        elif key == "validation_split" and cfg.get("test_split") in available:
            override["validation_split"] = None  # evaluated on test; validation unused
        else:
            mirror.resolve(root, dataset, config, splits=[split])  # raises DataError naming the missing file
    used = {s for k, s in declared.items() if override.get(k, s) is not None}
    # Only the splits the task uses: JSON schema inference can differ between splits (MBPP's challenge_test_list).
    override["dataset_kwargs"] = {"data_files": {s: str(p.resolve()) for s, p in available.items() if s in used}}
    return override, None


class TaskSource:
    """Plans and builds the lm-eval tasks of some benchmarks; offline it owns a temp folder of derived YAMLs."""

    def __init__(self, benchmarks: list[Benchmark], data_dir: Path | None) -> None:
        from lm_eval.tasks import TaskManager
        from lm_eval.tasks._index import TaskIndex

        self.data_dir = Path(data_dir).resolve() if data_dir else None
        self.include_paths = tuple(dict.fromkeys(str(p) for b in benchmarks for p in b.include_paths))
        self.work_dir = Path(tempfile.mkdtemp(prefix="growbench-tasks-"))
        # Indexing every lm-eval YAML is the slow part of lm-eval start-up: it is done once per process and
        # copied; the derived YAMLs are then added on top, as a later include path would (same names win).
        self._manager = TaskManager(include_path=[str(self.work_dir)], include_defaults=False)
        index = self._manager.task_index
        index.update(_base_index(self.include_paths))
        self.plans = {b.key: self._plan(b, index) for b in benchmarks}
        index.update(TaskIndex.build([self.work_dir]))

    def _plan(self, benchmark: Benchmark, index: dict[str, Any]) -> BenchmarkTasks:
        plan = BenchmarkTasks(benchmark)
        for name in benchmark.task_names:
            entries = _leaves(index, name)
            plan.roots[name] = [e.name for e in entries]
            for entry in entries:
                leaf = LeafPlan(entry.name, entry.yaml_path)
                if self.data_dir is not None:
                    override, missing = _derive(entry, self.data_dir)
                    if missing:
                        plan.unavailable = plan.unavailable or missing
                        continue
                    if override:
                        leaf.data_files = override["dataset_kwargs"]["data_files"]
                        text = "# derived by growbench from " + str(entry.yaml_path) + "\n"
                        (self.work_dir / f"{entry.name}.yaml").write_text(text + yaml.safe_dump(override, sort_keys=False))
                plan.leaves.append(leaf)
        return plan

    def manager(self) -> Any:
        """The TaskManager over the built-in tasks, the users' folders and the derived YAMLs (which win)."""
        return self._manager

    def build(self, key: str) -> list[Any]:
        """Build the benchmark's lm-eval Task/Group objects and verify every leaf reads the planned data."""
        plan = self.plans[key]
        if not plan.available:
            raise DataError(f"benchmark {key} is unavailable offline: {plan.unavailable}")
        index = self.manager().task_index
        for leaf in plan.leaves:  # before building: a fallback would fetch the hub dataset (or fail offline)
            derived = self.work_dir / f"{leaf.name}.yaml"
            if leaf.data_files is not None and Path(index[leaf.name].yaml_path or "") != derived:
                raise DataError(f"lm-eval task {leaf.name} did not load from the data mirror: lm-eval could not use "
                                f"the derived YAML {derived} and fell back to its hub task ({index[leaf.name].yaml_path})")
        loaded = self.manager().load(plan.benchmark.task_names)
        built = {name: task for name, task in loaded["tasks"].items()}
        expected = {leaf.name: leaf for leaf in plan.leaves}
        if set(built) != set(expected):
            raise DataError(f"lm-eval built tasks {sorted(set(built) ^ set(expected))} differently from the plan "
                            f"for {key}")
        for name, leaf in expected.items():
            if leaf.data_files is None:
                continue
            cfg = built[name].config
            files = (cfg.dataset_kwargs or {}).get("data_files") if cfg.dataset_path == "json" else None
            if files != leaf.data_files:
                raise DataError(f"lm-eval task {name} did not load from the data mirror (it reads "
                                f"{cfg.dataset_path}/{cfg.dataset_name}): the derived YAML "
                                f"{self.work_dir / (name + '.yaml')} was not used, and lm-eval fell back to its hub task")
        groups = loaded["groups"]
        out: list[Any] = []
        for name, leaves in plan.roots.items():
            out += [groups[name]] if name in groups else [built[leaf] for leaf in leaves]
        return out

    def fingerprint(self, key: str) -> dict[str, Any]:
        """What, besides the benchmark spec, fixes the inputs: data file contents and users' task files."""
        plan = self.plans[key]
        data = {leaf.name: {s: file_sha256(Path(p)) for s, p in sorted(leaf.data_files.items())}
                for leaf in plan.leaves if leaf.data_files}
        user = {str(p): folder_sha256(Path(p)) for p in plan.benchmark.include_paths}
        return {"data": data if self.data_dir else "hub", "user_tasks": user}

    def close(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> TaskSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def folder_sha256(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in (".yaml", ".yml", ".py", ".jinja", ".txt") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()
