"""Choose checkpoints and weights for the final merge from stored scores, and build the chosen merge.

    growbench select --run runs/mid --strategy anchors --out recipe.yaml --build merged/

Candidates are a training run's complete checkpoints (`--run`) or models matching a glob (`--models`). Their
scores come from the DuckDB store: per model and benchmark the run that counts in the suite (the store's one rule,
suite/store/queries.py: the most complete finished run, then the most recent), so the dev evaluations that
greedy-soup and search make never displace a full evaluation. A strategy (suite.select.strategies) turns that table into a Selection; the
selector writes it as a merge recipe (growth.merge.recipe) that lists each checkpoint, its weight, role and
the scores behind the choice, plus the strategy's trace. `build` merges the recipe, registers the result with
its parents and evaluates it on the suite, so it appears on the leaderboard.
"""

from __future__ import annotations

import glob
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.checkpoint import Checkpoint
from growth.foundation.atomic import write_text
from growth.foundation.errors import ConfigError
from growth.merge.recipe import MergeRecipe, ModelEntry
from suite.eval.benchmarks import DEFAULT_SUITE, Suite, as_suite
from suite.select.strategies import STRATEGIES
from suite.store import Store
from suite.store.queries import find_models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    model_id: str
    name: str
    path: str
    step: int | None = None


@dataclass
class Chosen:
    candidate: Candidate
    weight: float
    role: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Selection:
    chosen: list[Chosen]
    trace: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectOptions:
    suite: Suite = DEFAULT_SUITE  # given as a name or path, it becomes its Suite in __post_init__
    """Suite whose stored scores rank the candidates and on which --build evaluates."""
    config: Path | None = None
    """Strategy config YAML (anchors: roles file; greedy-soup/search: dev split and budget)."""
    limit: int | None = None
    """Override the dev split's documents per benchmark (greedy-soup, search)."""
    backend: str | None = None
    """Evaluation backend for dev and build evaluations."""
    data_dir: Path | None = None
    """Local benchmark mirror."""
    work_dir: Path | None = None
    """Where candidate merges are written while evaluated (default: candidates/ beside the database)."""
    allow_code_execution: bool = False
    """Let code benchmarks (mbpp, evalplus) run model-written code in --build and dev evaluations."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "suite", as_suite(self.suite))
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1 document per benchmark, got {self.limit}")


@dataclass
class SelectContext:
    store: Store
    candidates: list[Candidate]
    table: Any  # DataFrame: index model_id, a column per benchmark key, values 0..1, NaN if not evaluated
    options: SelectOptions
    config: Any  # the strategy's YAML mapping, or None for its defaults
    stderr: Any = None  # DataFrame like `table`: each score's standard error (NaN where none was stored)
    runs: Any = None  # DataFrame like `table`: the run_id each score comes from (for per-document tests)
    documents: Any = None  # DataFrame like `table`: the documents each score rests on (the split selection used)

    def by_id(self, model_id: str) -> Candidate:
        return next(c for c in self.candidates if c.model_id == model_id)

    def suite_average(self) -> Any:
        """Each candidate's mean over the benchmarks every candidate has; a Series sorted best first."""
        common = self.table.dropna(axis=1, how="any")
        if common.shape[1] == 0:
            raise ConfigError(f"no benchmark of suite {self.options.suite.name!r} is scored for every candidate; "
                              "evaluate them with `growbench sweep` first")
        return common.mean(axis=1).sort_values(ascending=False, kind="stable")


def _open_candidate(path: Path) -> Candidate:
    ckpt = Checkpoint.open(path)
    training = json.loads((path / "training.json").read_text()) if (path / "training.json").exists() else {}
    name = f"{training['run_id']}@{training['step']}" if training.get("run_id") else path.name
    return Candidate(ckpt.fingerprint(), name, str(path.absolute()), training.get("step"))


def find_candidates(store: Store, *, run: Path | None = None, models: str | None = None) -> list[Candidate]:
    """A run's complete checkpoints, or models matching a glob (store names/ids/paths, else directories)."""
    if (run is None) == (models is None):
        raise ConfigError("give exactly one of --run RUN or --models GLOB")
    if run is not None:
        if not (run / "checkpoints").is_dir():
            raise ConfigError(f"{run} is not a training run (no checkpoints/ folder)")
        found = [_open_candidate(p) for p in sorted((run / "checkpoints").glob("step-*")) if p.is_dir()]
    else:
        from pandas import isna

        rows = find_models(store, models)
        gone = [m["name"] for m in rows if not Path(m["path"]).is_dir()]
        if gone:  # e.g. dev-split candidates the selector merged, scored and deleted
            log.warning("skipping %d matching models whose folders no longer exist: %s", len(gone),
                        ", ".join(gone[:5]))
        found = [Candidate(m["model_id"], m["name"], m["path"], None if isna(m["step"]) else int(m["step"]))
                 for m in rows if Path(m["path"]).is_dir()]
        if not found:
            found = [_open_candidate(Path(p)) for p in sorted(glob.glob(models))
                     if (Path(p) / "config.json").exists()]
    unique = list({c.model_id: c for c in found}.values())
    if not unique:
        raise ConfigError(f"no candidate checkpoints found for {run or models!r}")
    return unique


def score_tables(store: Store, candidates: list[Candidate], suite: Suite) -> tuple[Any, Any, Any, Any]:
    """(values, stderrs, run ids, documents): per candidate and benchmark, the primary score (0..1) of the run that
    counts in `suite` (runs are stored under the suite's name)."""
    import pandas as pd

    from suite.store.queries import picked_runs

    ids = [c.model_id for c in candidates]
    columns = ("model_id", "benchmark", "value", "stderr", "run_id", "n")
    rows = []
    if store.path.exists():
        with store.connect(read_only=True) as con:
            rows = picked_runs(con, ids, suite=suite.name, columns=columns)
    df = pd.DataFrame(rows, columns=list(columns))
    return tuple((df.pivot(index="model_id", columns="benchmark", values=column) if len(df) else pd.DataFrame())
                 .reindex(index=ids) for column in columns[2:])


def select(store: Store, candidates: list[Candidate], strategy: str, options: SelectOptions) -> MergeRecipe:
    """Run `strategy` over the candidates' stored scores and return the recipe, with its evidence."""
    fn = STRATEGIES.get(strategy)
    config = None
    if options.config is not None:
        from growth.foundation.config import read_yaml

        config = read_yaml(options.config)
    table, stderr, runs, documents = score_tables(store, candidates, options.suite)
    ctx = SelectContext(store, candidates, table, options, config, stderr, runs, documents)
    selection = fn(ctx)
    entries = [ModelEntry(path=c.candidate.path, params={"weight": round(c.weight, 6)}, role=c.role,
                          name=c.candidate.name, evidence={"model_id": c.candidate.model_id, **c.evidence})
               for c in selection.chosen]
    record = {"strategy": strategy, "suite": options.suite.name,
              "candidates": [{"name": c.name, "model_id": c.model_id, "path": c.path} for c in candidates],
              **selection.trace}
    return MergeRecipe(models=entries, params={"normalize": True}, name=f"{strategy}-{options.suite.name}",
                       selection=record)


def write_recipe(recipe: MergeRecipe, path: Path) -> Path:
    return write_text(path, recipe.to_yaml())


def select_recipe(store: Store, strategy: str, options: SelectOptions, out: Path, *, run: Path | None = None,
                  models: str | None = None) -> tuple[MergeRecipe, list[Candidate]]:
    """Find the candidates (a run's checkpoints, or models matching a glob), choose among them with `strategy` and
    write the recipe to `out`; returns it with the candidates."""
    candidates = find_candidates(store, run=run, models=models)
    recipe = select(store, candidates, strategy, options)
    write_recipe(recipe, out)
    return recipe, candidates


def build(store: Store, recipe: MergeRecipe, out: Path, options: SelectOptions, *, limit: int | None = None,
          force: bool = False) -> str:
    """Merge the recipe into `out`, register it (kind merged, parents from merge.json), evaluate it."""
    from growth.merge.execute import plan_merge, run_merge
    from suite.eval.evaluate import evaluate

    path = run_merge(plan_merge(recipe), out, force=force)
    model_id = store.register_model(path)
    evaluate(path, store=store, suite=options.suite, limit=limit, backend=options.backend, data_dir=options.data_dir,
             allow_code_execution=options.allow_code_execution)
    return model_id
