"""Import lm-eval's own output files into the store: `growbench ingest RESULTS_JSON... --model PATH_OR_NAME`.

For scores produced outside growbench (a cluster's own harness runs, someone else's numbers): each results_*.json,
with the samples_<task>_*.jsonl beside it when lm-eval logged samples, becomes finished runs of the suite's benchmarks
whose tasks it holds, with per-document values from the samples (so `compare` pairs imported runs too). Scores are
read exactly as growbench's own runs read them (suite/eval/scores.py); lm-eval's version, the task configs, versions
and shots and the run's config are kept in the run's config. Imported runs have their own config hash (lm-eval's task configs in it), so importing a file twice adds nothing. A result whose task
settings differ from the suite's (shots, or the benchmark's metric/filter not reported, so another one is used)
carries a `deviation` saying what differs, and the leaderboard flags it. Tasks no benchmark of the suite uses are
listed and left out.

Every file is read and checked before the store is touched, and all runs go in one transaction: a malformed file
changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from growth.checkpoint import Checkpoint
from growth.foundation.errors import ConfigError, DataError
from suite.eval.benchmarks import DEFAULT_SUITE, Benchmark, Suite, TaskRef, as_suite
from suite.eval.evaluate import config_hash
from suite.eval.scores import sample_rows, sample_scores, score_rows
from suite.store import Store
from suite.store.queries import find_models


@dataclass
class ResultsFile:
    path: Path
    data: dict[str, Any]
    samples: dict[str, list[dict[str, Any]]]  # task -> lm-eval's per-document records


@dataclass
class IngestReport:
    model_id: str
    imported: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)  # file, benchmark,
    # run_id (None: already imported), deviation
    unused: dict[str, list[str]] = field(default_factory=dict)  # file -> tasks no benchmark uses


def _bad(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not an lm-eval results file: {why}")


def read_results(path: str | Path) -> ResultsFile:
    """One results_*.json and the samples_<task>_<same date>.jsonl files beside it, checked for lm-eval's shape."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"lm-eval results file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(path, f"cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise _bad(path, f"invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise _bad(path, "the top level is not a mapping")
    for key in ("results", "configs", "n-shot"):
        if not isinstance(data.get(key), dict):
            raise _bad(path, f"no {key!r} mapping")
    for task, metrics in data["results"].items():
        if not isinstance(metrics, dict):
            raise _bad(path, f"results[{task!r}] is not a mapping of metrics")
    for key in ("versions", "group_subtasks"):
        if not isinstance(data.get(key, {}), dict):
            raise _bad(path, f"{key!r} is not a mapping")
    for group, children in data.get("group_subtasks", {}).items():
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise _bad(path, f"group_subtasks[{group!r}] is not a list of task names")
    date_id = path.stem.removeprefix("results_") if path.stem.startswith("results_") else None
    samples: dict[str, list[dict[str, Any]]] = {}
    for task in data["results"]:
        found = sorted(path.parent.glob(f"samples_{task}_{date_id}.jsonl")) if date_id else []
        if found:
            samples[task] = _read_samples(found[0])
    return ResultsFile(path, data, samples)


def _read_samples(path: Path) -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {i} is not a JSON record ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("doc_id"), int):
            raise DataError(f"{path} line {i} is not an lm-eval sample record (no integer doc_id)")
        out.append(record)
    return out


def _leaves(data: dict[str, Any], task: str, within: tuple[str, ...] = ()) -> list[str]:
    """The leaf tasks of a task or group (group_subtasks), refusing a group that contains itself."""
    if task in within:
        raise ValueError(f"group_subtasks has a cycle through {task!r}")
    children = data.get("group_subtasks", {}).get(task)
    return [leaf for child in children for leaf in _leaves(data, child, (*within, task))] if children else [task]


def _as_run(b: Benchmark, data: dict[str, Any]) -> tuple[Benchmark, list[str]]:
    """The benchmark as the file ran it (the metric/filter it reports) and how that differs from the suite."""
    deviations, refs = [], []
    for ref in b.tasks:
        reported = [k for k, v in data["results"][ref.name].items() if "," in k and "_stderr," not in k
                    and isinstance(v, (int, float)) and not isinstance(v, bool)]
        wanted = f"{ref.metric},{ref.filter}"
        if wanted in reported or not reported:
            refs.append(ref)  # nothing reported at all: score_rows names the problem
            continue
        same_metric = [k for k in reported if k.startswith(ref.metric + ",")]
        metric, filter_ = (same_metric or reported)[0].split(",", 1)
        deviations.append(f"{ref.name} reports no {wanted}; used {metric},{filter_}")
        refs.append(TaskRef(ref.name, metric, filter_))
    shots = sorted({data["n-shot"].get(leaf) for name in b.task_names for leaf in _leaves(data, name)} - {None})
    if shots and shots != [b.num_fewshot]:
        deviations.append(f"{'/'.join(map(str, shots))}-shot (suite: {b.num_fewshot}-shot)")
    if not deviations:
        return b, []
    headline = {"metric": refs[0].metric, "filter": refs[0].filter} if b.aggregate == "lm-eval" else {}
    return dataclasses.replace(b, tasks=tuple(refs), **headline), deviations


def _when(data: dict[str, Any], path: Path) -> tuple[datetime, datetime]:
    start = data.get("date")
    try:
        started = (datetime.fromtimestamp(float(start), timezone.utc) if isinstance(start, (int, float)) else
                   datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise _bad(path, f"'date' {start!r} is not a Unix timestamp") from None
    try:
        took = float(data.get("total_evaluation_time_seconds") or 0)
    except (TypeError, ValueError):
        took = 0.0
    return started, started + timedelta(seconds=took)


def _dtype(config: dict[str, Any]) -> str | None:
    args = config.get("model_args")
    if isinstance(args, dict) and args.get("dtype"):
        return str(args["dtype"])
    return str(config["model_dtype"]).removeprefix("torch.") if config.get("model_dtype") else None


def plan_runs(results: ResultsFile, suite: Suite) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs one file yields for the suite's benchmarks, and the file's tasks that no benchmark uses."""
    data, used = results.data, set()
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    started, finished = _when(data, results.path)
    runs = []
    for b in suite.benchmarks:
        if not all(name in data["results"] for name in b.task_names):
            continue
        try:
            leaves = [leaf for name in b.task_names for leaf in _leaves(data, name)]
            as_run, deviations = _as_run(b, data)
            own = {**data, "results": {t: m for t, m in data["results"].items() if t in b.task_names or t in leaves}}
            scores = score_rows(as_run, own)
        except (ConfigError, KeyError, TypeError, ValueError) as e:  # a shape problem of the file
            raise _bad(results.path, f"benchmark {b.key}: {e}") from None
        used |= set(b.task_names) | set(leaves)
        hashed = {"suite": suite.name, "benchmark": b.spec(), "lm_eval": data.get("lm_eval_version"),
                  "imported": {"configs": {t: data["configs"].get(t) for t in leaves},
                               "versions": {t: data.get("versions", {}).get(t) for t in leaves},
                               "n-shot": {t: data["n-shot"].get(t) for t in leaves},
                               "limit": config.get("limit"), "model_args": config.get("model_args")}}
        samples = {t: results.samples[t] for t in leaves if t in results.samples}
        logged = {"samples": samples, "group_subtasks": data.get("group_subtasks", {})}
        shots = sorted({data["n-shot"].get(t) for t in leaves} - {None})
        limit = config.get("limit")
        runs.append({
            "benchmark": b.key, "config_hash": config_hash(hashed), "scores": scores,
            "samples": sample_rows(logged) if samples else None,
            "sample_scores": _per_document(as_run, logged, results.path) if samples else None,
            "config": {**hashed, "source": {"file": str(results.path.absolute()), "config": config,
                                            "model_name": data.get("model_name"), "git_hash": data.get("git_hash"),
                                            "task_hashes": data.get("task_hashes"),
                                            "transformers_version": data.get("transformers_version")},
                       "deviation": deviations},
            "deviation": "; ".join(deviations) or None, "started_at": started, "finished_at": finished,
            "owner": None,
            "run_fields": {"suite": suite.name, "lm_eval_version": data.get("lm_eval_version"),
                           "backend": config.get("model"), "dtype": _dtype(config),
                           "limit": int(limit) if isinstance(limit, (int, float)) else None,
                           "num_fewshot": shots[0] if len(shots) == 1 else None,
                           "seed": config.get("fewshot_seed")}})
    unused = sorted(t for t in data["results"] if t not in used)
    return runs, unused


def _per_document(benchmark: Benchmark, logged: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    try:
        return sample_scores(benchmark, logged)
    except (ConfigError, KeyError, TypeError, ValueError) as e:  # samples that do not fit their results file
        raise _bad(path, f"benchmark {benchmark.key}: its samples do not fit its results ({e})") from None


def _model(store: Store, model: str) -> tuple[Checkpoint | None, str | None]:
    """A checkpoint folder (registered by fingerprint), a model already in the store, or a name alone."""
    path = Path(model).expanduser()
    if path.is_dir():
        return Checkpoint.open(path), None
    known = [m for m in find_models(store, model) if model in (m["model_id"], m["name"])]
    if len(known) > 1:
        raise DataError(f"{model!r} names {len(known)} models in the store; give a model id or a checkpoint folder")
    if not known and _path_like(model):
        raise DataError(f"model {model} does not exist; give a checkpoint folder, a model in the store, or a name "
                        "(e.g. Qwen/Qwen3-4B-Base) for a model known only by name")
    return None, known[0]["model_id"] if known else None


def _path_like(model: str) -> bool:
    """Whether `model` reads as a local path rather than a hub name (ORG/NAME): it starts like a path, has more
    than one folder, or its first folder exists here."""
    parts = Path(model).expanduser().parts
    return (model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or "\\" in model
            or (len(parts) > 1 and Path(parts[0]).is_dir()))


def ingest(files: list[str | Path], model: str, *, suite: str | Path | Suite = DEFAULT_SUITE,
           store: Store | None = None) -> IngestReport:
    """Import lm-eval results files for one model; see the module docstring."""
    store = store or Store()
    chosen = as_suite(suite)
    if not files:
        raise DataError("give at least one lm-eval results_*.json file")
    planned = []
    unused: dict[str, list[str]] = {}
    for f in files:
        results = read_results(f)
        runs, left = plan_runs(results, chosen)
        if not runs:
            raise DataError(f"{results.path}: none of its tasks ({', '.join(sorted(results.data['results']))}) "
                            f"makes up a benchmark of suite {chosen.name}")
        planned += [(str(results.path), run) for run in runs]
        if left:
            unused[str(results.path)] = left
    ckpt, model_id = _model(store, model)
    if ckpt is not None:
        model_id = store.register_model(ckpt.path)
    elif model_id is None:
        model_id = store.register_external(model)
    run_ids = store.import_runs(model_id, [run for _, run in planned])
    report = IngestReport(model_id, unused=unused)
    report.imported = [(f, run["benchmark"], run_id, run["deviation"]) for (f, run), run_id in zip(planned, run_ids)]
    return report
