"""The pipeline's eight steps, each reading what it needs from the plan (suite/pipeline/plan.py) and returning its
outputs, which suite/pipeline/execute.py records in the step's marker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from growth.foundation.atomic import write_json, write_text
from growth.foundation.terminal import terminal
from suite.pipeline.plan import GrowPlan, PipelinePlan, SeedPlan, TrainPlan
from suite.store import Store


@dataclass
class Run:
    """A run in progress: its plan, the store, the console and the outputs of the steps so far."""

    plan: PipelinePlan
    store: Store
    log: Callable[[str], None]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)


def step_seed(run: Run) -> dict[str, Any]:
    return make_seed(run.plan.seed, run.store)


def make_seed(seed: SeedPlan, store: Store) -> dict[str, Any]:
    """Write the fixture seed (or open the seed checkpoint) and register it."""
    from growth.checkpoint import Checkpoint
    from growth.fixture import make_tiny

    if seed.fixture is not None:
        path = make_tiny(seed.model.path, seed.fixture, force=True)
    else:
        Checkpoint.open(seed.model.path)
        path = seed.model.path
    return {"path": str(path), "model_id": store.register_model(path, kind="seed", name=seed.model.name)}


def step_grow(run: Run) -> dict[str, Any]:
    return grow_model(run.plan.grow, run.plan.seed.model.path, run.store, run.log)


def grow_model(g: GrowPlan, seed: Path, store: Store, log: Callable[[str], None]) -> dict[str, Any]:
    """Grow `seed` by the plan (and write the function-preserving stage, when the plan has one) and register it."""
    from growth.grow import grow

    result = grow(seed, g.model.path, g.plan, seed=g.seed, dtype=g.dtype, verify=g.verify, force=True)
    log("  " + " -> ".join(f"{label} {count:,}" for label, count in result.plan.stage_counts()))
    outputs = {"path": str(result.path), "num_parameters": result.lineage["num_parameters"],
               "model_id": store.register_model(result.path, kind="grown", name=g.model.name),
               "preserving": g.preserving == len(g.plan.steps)}
    if g.stage is not None:
        stage = grow(seed, g.stage.path, g.stage_plan, seed=g.seed, dtype=g.dtype, force=True)
        outputs["stage"] = {"name": g.stage.name, "path": str(stage.path),
                            "steps": [s.op for s in g.stage_plan.steps],
                            "model_id": store.register_model(stage.path, kind="grown", name=g.stage.name)}
    return outputs


def step_train(run: Run) -> dict[str, Any]:
    return train_model(run.plan.train, run.log)


def train_model(t: TrainPlan, log: Callable[[str], None], label: str = "[train]") -> dict[str, Any]:
    """Train (resuming from the run folder's last complete state, if any) with a progress display."""
    from training.metrics import read_metrics
    from training.trainer import train

    resume = (t.run_dir / "state").is_dir() and any((t.run_dir / "state").iterdir())
    if resume:
        log("resuming training from its last complete checkpoint")
    with terminal().progress() as bar:
        task = bar.add_task(label, total=None)

        def progress(row: dict[str, Any], total: int) -> None:
            bar.update(task, completed=row["step"], total=total,
                       description=f"{label} {row['stage']} loss {row['loss']:.3f}")

        exports = train(t.config, t.run_dir, resume=resume, progress=progress)
    last = read_metrics(t.run_dir)[-1:]
    if last:
        log(f"  {last[0]['step']} steps, {last[0]['tokens']:,} tokens, loss {last[0]['loss']:.3f}; "
            f"{len(exports)} checkpoints")
    return {"run_dir": str(t.run_dir), "checkpoints": [str(p) for p in exports]}


def step_sweep(run: Run) -> dict[str, Any]:
    from suite.eval.sweep import sweep

    ev = run.plan.eval
    report = sweep([str(m.path) for m in ev.swept], ev.options, store=run.store, distribution=ev.distribution)
    jobs = log_jobs(run.log, report, run.plan.suite_key)
    return {"checkpoints": len(report.checkpoints), "engine_loads": report.engine_loads, "jobs": jobs}


def log_jobs(log: Callable[[str], None], report: Any, suite: str) -> dict[str, int]:
    """One summary line of a sweep: models x benchmarks and how the jobs ended."""
    statuses = [r.status for r in report.results]
    jobs = {s: statuses.count(s) for s in sorted(set(statuses))}
    benchmarks = len({r.benchmark for r in report.results})
    models = len(report.checkpoints)
    log(f"  {models} model{'s' * (models != 1)} x {benchmarks} benchmarks ({suite}): "
        + ", ".join(f"{n} {s}" for s, n in jobs.items()))
    return jobs


def step_select(run: Run) -> dict[str, Any]:
    from results.selection import selection_lines
    from suite.select.selector import select_recipe

    s = run.plan.select
    recipe, _ = select_recipe(run.store, s.strategy, s.options, s.recipe, run=run.plan.train.run_dir)
    for line in selection_lines(recipe):  # the split the scores rest on, the scores, what each candidate became
        run.log("  " + line)
    return {"recipe": str(s.recipe)}


def step_build(run: Run) -> dict[str, Any]:
    from growth.merge.execute import plan_merge, run_merge
    from growth.merge.recipe import load_recipe

    final = run.plan.eval.final
    path = run_merge(plan_merge(load_recipe(run.outputs["select"]["recipe"])), final.path, force=True)
    return {"path": str(path), "model_id": run.store.register_model(path, kind="merged", name=final.name)}


def step_evaluate(run: Run) -> dict[str, Any]:
    from suite.eval.sweep import sweep

    report = sweep([run.outputs["build"]["path"]], run.plan.eval.options, store=run.store)
    log_jobs(run.log, report, run.plan.suite_key)
    return {"results": {r.benchmark: r.score for r in report.results}}


def step_report(run: Run) -> dict[str, Any]:
    from results.evidence import write_evidence
    from results.leaderboard import build_leaderboard
    from results.leaderboard_format import render
    from results.plots import plot_compare, plot_run
    from results.regress import regress, to_junit
    from results.report import ReportOptions, write_report
    from results.reported_scores import load_reported

    plan, rep = run.plan, run.plan.report
    out, suite, final = rep.out, plan.suite_key, plan.eval.final.name
    config = plan.config.report
    reported = load_reported(rep.reported)
    comparable = not plan.eval.offline
    board = build_leaderboard(run.store, reported=reported if comparable else None, models=rep.models,
                              suite=suite, marks=config.marks)
    table = render(board, "md")
    write_text(out / "leaderboard.md", table)
    outputs: dict[str, Any] = {"leaderboard": str(out / "leaderboard.md"), "table": table,
                               **write_evidence(run.store, out, suite=suite, models=rep.models, final=final,
                                                seed=rep.seed, growth=rep.growth)}
    outputs["run_plot"] = str(plot_run(run.store, plan.train.run_id, out / "run.png", suite=suite))
    if comparable:
        outputs["compare_plot"] = str(plot_compare(run.store, final, reported, out / "compare.png", suite=suite))
        result = regress(run.store, final, f"reported:{reported.name}", abs_tol=config.abs_tol, z=config.z,
                         suite=suite, allow_mismatch=True)
        write_json(out / "regress.json", result.to_dict())
        write_text(out / "regress.xml", to_junit(result))
        outputs["regress"] = {"json": str(out / "regress.json"), "passed": result.passed}
    options = ReportOptions(run=plan.train.run_id, suite=suite, reported=reported.name if comparable else None,
                            abs_tol=config.abs_tol, z=config.z, marks=config.marks)
    outputs["page"] = str(write_report(run.store, out / "report.html", options))
    return outputs


STEP_FUNCTIONS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "seed": step_seed, "grow": step_grow, "train": step_train, "sweep": step_sweep, "select": step_select,
    "build": step_build, "evaluate": step_evaluate, "report": step_report}
