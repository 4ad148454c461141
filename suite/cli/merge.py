"""`growbench merge` (a recipe or inline --model PATH:WEIGHT) and `growbench select` (scores -> recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from suite.cli import options
from suite.cli.console import console
from suite.cli.library_log import library_output


def merge(out: Path = typer.Argument(..., help="Output checkpoint directory."),
          recipe: Optional[Path] = typer.Option(None, help="Merge recipe YAML (as `growbench select` writes)."),
          model: Optional[List[str]] = typer.Option(None, "--model", help="PATH:WEIGHT, repeatable, instead of "
                                                    "--recipe."),
          normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize", help="Divide by the sum of "
                                                   "the weights (default: the recipe's, else on)."),
          allow_negative: bool = typer.Option(False, help="Accept negative weights."),
          dtype: Optional[str] = typer.Option(None, help="Output dtype (float32, bfloat16, float16); default: "
                                              "the inputs'."),
          export_mergekit: Optional[Path] = typer.Option(None, help="Also write the equivalent mergekit YAML here."),
          db: Optional[Path] = options.DB, force: bool = options.FORCE) -> None:
    """Weighted average of checkpoints of one architecture, streamed tensor by tensor; registered in DuckDB."""
    from growth.dtype import dtype_name
    from growth.foundation.atomic import write_text
    from growth.merge.execute import plan_merge, run_merge
    from growth.merge.mergekit import mergekit_yaml
    from growth.merge.recipe import given_recipe
    from suite.store import Store

    plan_recipe = given_recipe(recipe, model or [], dtype=dtype, normalize=normalize,
                               allow_negative=allow_negative or None)
    store = Store(db)
    note = plan_recipe.normalised()
    if note:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    with library_output("merge", db):
        plan = plan_merge(plan_recipe)
        out_dtype = dtype_name(plan.out_dtype)
        path = run_merge(plan, out, force=force)
        model_id = store.register_model(path)
    if export_mergekit is not None:
        write_text(export_mergekit, mergekit_yaml(plan_recipe, out_dtype))
    weights = ", ".join(f"{Path(m['path']).name}={m['weight']:.4g}" for m in plan.record()["models"])
    console.print(f"merged {len(plan.sources)} checkpoints ({weights}) into {path} [{out_dtype}], "
                  f"registered as {_label(store, model_id)}", markup=False, highlight=False, soft_wrap=True)


def _label(store: Any, model_id: str) -> str:
    """A registered model as the user names it: its name, with a short id where another model shares it."""
    from suite.store.names import model_labels

    return model_labels(store, [model_id], distinct_in_store=True)[model_id]


def select(run: Optional[str] = typer.Option(None, help="Training run (its id or its folder): its checkpoints are "
                                              "the candidates."),
           models: Optional[str] = typer.Option(None, help="Candidate models: a name glob, id or path glob."),
           suite: Optional[str] = options.SUITE,
           strategy: str = typer.Option("anchors", help="anchors, greedy-soup or search."),
           config: Optional[Path] = typer.Option(None, help="Strategy YAML (anchors roles; dev split, budget)."),
           out: Path = typer.Option(Path("runs/recipes/selected.yaml"), help="Recipe file to write."),
           build: Optional[Path] = typer.Option(None, help="Also merge the recipe here, evaluate and register it."),
           limit: Optional[int] = typer.Option(None, help="Dev-split documents per benchmark (greedy-soup, search)."),
           build_limit: Optional[int] = typer.Option(None, help="--limit for the --build evaluation (default: full)."),
           backend: Optional[str] = options.BACKEND, data_dir: Optional[Path] = options.DATA_DIR,
           work_dir: Optional[Path] = typer.Option(None, help="Scratch folder for candidate merges."),
           allow_code_execution: bool = options.CODE, db: Optional[Path] = options.DB,
           force: bool = options.FORCE) -> None:
    """Choose checkpoints and weights from stored scores; write the recipe; optionally build the merged model."""
    from growth.foundation.atomic import require_new
    from growth.foundation.errors import ConfigError
    from growth.foundation.settings import data_dir as resolve_data_dir
    from results.selection import selection_lines
    from suite.select.selector import SelectOptions, select_recipe
    from suite.select.selector import build as build_merge
    from suite.select.strategies import STRATEGIES
    from suite.store import Store
    from suite.store.queries import choose_suite, training_run

    mirror = resolve_data_dir(data_dir)
    STRATEGIES.get(strategy)  # an unknown strategy is one line naming the known ones, before anything is read
    if build_limit is not None and build_limit < 1:
        raise ConfigError(f"--build-limit must be at least 1 document per task (leave it out for all), got "
                          f"{build_limit}")
    if build is not None:
        require_new(build, force)
    store = Store(db)
    run_id, folder = training_run(store, run) if run is not None else (None, None)
    suite = choose_suite(store, suite, run=run_id, models=[models] if models else None)
    chosen_by = SelectOptions(suite=suite, config=config, limit=limit, backend=backend,
                              data_dir=mirror, work_dir=work_dir,
                              allow_code_execution=allow_code_execution)
    with library_output("select", db):  # greedy-soup and search merge and evaluate candidates
        recipe, candidates = select_recipe(store, strategy, chosen_by, out, run=folder, models=models)
    for line in selection_lines(recipe):  # the split the scores rest on, the scores, what each candidate became
        typer.echo(line)
    console.print(f"wrote {out} ({strategy}, {len(recipe.models)} of {len(candidates)} candidates)", markup=False,
                  highlight=False, soft_wrap=True)
    if build is not None:
        with library_output("select --build", db):
            model_id = build_merge(store, recipe, build, chosen_by, limit=build_limit, force=force)
        console.print(f"built {build}, evaluated on {suite} and registered as {_label(store, model_id)}",
                      markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("merge")(merge)
    app.command("select")(select)
