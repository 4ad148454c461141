"""The user's main job as one resumable chain: seed -> grow -> train -> sweep -> select -> build -> evaluate -> report.

    growbench pipeline --config tiny                        # the embedded default, 2 CPUs, minutes
    growbench pipeline --config openseek-mid-v1 --dry-run   # the card's run, planned without weights

Every step writes its outputs under one work dir and, once they are complete, a marker `.steps/<step>.json` holding
a hash of the config sections it depends on (chained through the steps before it). A step whose marker matches is
skipped, so a re-run after a crash continues where it stopped: training resumes from its last complete state, the
sweep skips finished eval jobs (the store keeps them), and half-written outputs are never published.

The console gets one line per step (and a progress display with ETA while a long step runs on a terminal); what
lm-eval, transformers, vLLM and the rest print goes to `<workdir>/pipeline.log` (growth/foundation/terminal.py),
unless `verbose` (growbench -v). The last step writes the report page `<workdir>/report/report.html`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from growth.foundation.atomic import write_json, write_text
from growth.foundation.config import merged
from growth.foundation.errors import ConfigError
from growth.foundation.terminal import capture, terminal
from suite.eval.benchmarks import load_suite
from suite.pipeline.config import PipelineConfig
from suite.store import Store

STEPS = ("seed", "grow", "train", "sweep", "select", "build", "evaluate", "report")
# The config sections each step reads; a change in one redoes that step and every step after it.
DEPENDS = {"seed": ("seed",), "grow": ("grow",), "train": ("train",), "sweep": ("eval",), "select": ("select",),
           "build": (), "evaluate": (), "report": ("report",)}


@dataclass
class Context:
    config: PipelineConfig
    workdir: Path
    store: Store
    data_dir: Path | None
    log: Callable[[str], None]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def suite(self) -> str:
        ev = self.config.eval
        return ev.suite if self.data_dir is not None or ev.offline_suite is None else ev.offline_suite

    def path(self, *parts: str) -> Path:
        return self.workdir.joinpath(*parts)

    def name(self, what: str) -> str:
        return f"{self.config.name}-{what}"

    def eval_options(self) -> Any:
        return self.config.eval.options(self.data_dir)

    def distribution(self) -> Any:
        return self.config.eval.distribution()


# --- the steps: each returns its outputs (recorded in its marker) ----------------------------------------------

def step_seed(ctx: Context) -> dict[str, Any]:
    from growth.checkpoint import Checkpoint
    from growth.fixture import TinySpec, make_tiny

    seed = ctx.config.seed
    if seed.fixture is not None:
        path = make_tiny(ctx.path("seed"), TinySpec(**seed.fixture), force=True)
    else:
        path = Path(ctx.config.resolve(seed.path) or "")
        Checkpoint.open(path)
    return {"path": str(path), "model_id": ctx.store.register_model(path, kind="seed", name=ctx.name("seed"))}


def step_grow(ctx: Context) -> dict[str, Any]:
    from growth.grow import grow
    from growth.plan import first_steps, load_plan, preserving_steps

    g = ctx.config.grow
    plan = load_plan(ctx.config.resolve(g.plan) or g.plan)
    result = grow(ctx.outputs["seed"]["path"], ctx.path("grown"), plan, seed=g.seed, dtype=g.dtype, verify=g.verify,
                  force=True)
    ctx.log("  " + " -> ".join(f"{label} {count:,}" for label, count in result.plan.stage_counts()))
    preserving = preserving_steps(plan)
    outputs = {"path": str(result.path), "num_parameters": result.lineage["num_parameters"],
               "model_id": ctx.store.register_model(result.path, kind="grown", name=ctx.name("grown")),
               "preserving": preserving == len(plan.steps)}
    if 0 < preserving < len(plan.steps):
        # the checkpoint of the function-preserving steps before the first that changes the function (the card's
        # width-expanded stage); written whatever eval.seed_model says, so turning that on later needs no re-grow
        prefix = first_steps(plan, preserving)
        label = prefix.steps[-1].stage or "preserving"
        stage = grow(ctx.outputs["seed"]["path"], ctx.path(f"grown-{label}"), prefix, seed=g.seed, dtype=g.dtype,
                     force=True)
        outputs["stage"] = {"name": ctx.name(label), "path": str(stage.path), "steps": [s.op for s in prefix.steps],
                            "model_id": ctx.store.register_model(stage.path, kind="grown", name=ctx.name(label))}
    return outputs


def train_config(ctx: Context) -> Any:
    """The train section's config with its overrides, training the grown model into WORKDIR/train."""
    from training.config import load_config

    t = ctx.config.train
    grown = ctx.outputs.get("grow", {}).get("path", str(ctx.path("grown")))
    return load_config(ctx.config.resolve(t.config) or t.config,
                       merged(t.overrides, {"model": grown, "run_dir": str(ctx.path("train")),
                                            "run_id": ctx.name("train")}))


def step_train(ctx: Context) -> dict[str, Any]:
    from training.metrics import read_metrics
    from training.trainer import train

    run = ctx.path("train")
    resume = (run / "state").is_dir() and any((run / "state").iterdir())
    if resume:
        ctx.log("resuming training from its last complete checkpoint")
    config = train_config(ctx)
    with terminal().progress() as bar:
        task = bar.add_task("[train]", total=None)

        def progress(row: dict[str, Any], total: int) -> None:
            bar.update(task, completed=row["step"], total=total,
                       description=f"[train] {row['stage']} loss {row['loss']:.3f}")

        exports = train(config, run, resume=resume, progress=progress)
    last = read_metrics(run)[-1:]
    if last:
        ctx.log(f"  {last[0]['step']} steps, {last[0]['tokens']:,} tokens, loss {last[0]['loss']:.3f}; "
                f"{len(exports)} checkpoints")
    return {"run_dir": str(run), "checkpoints": [str(p) for p in exports]}


def step_sweep(ctx: Context) -> dict[str, Any]:
    from suite.eval.sweep import sweep

    paths = [str(p) for p in sorted(ctx.path("train", "checkpoints").glob("step-*"))]
    if ctx.config.eval.seed_model:
        stage = ctx.outputs["grow"].get("stage")
        paths = [ctx.outputs["seed"]["path"], *([stage["path"]] if stage else []), ctx.outputs["grow"]["path"],
                 *paths]
    report = sweep(paths, ctx.eval_options(), store=ctx.store, distribution=ctx.distribution())
    jobs = log_jobs(ctx, report)
    return {"checkpoints": len(report.checkpoints), "engine_loads": report.engine_loads, "jobs": jobs}


def log_jobs(ctx: Context, report: Any) -> dict[str, int]:
    """One summary line of a sweep: models x benchmarks and how the jobs ended."""
    statuses = [r.status for r in report.results]
    jobs = {s: statuses.count(s) for s in sorted(set(statuses))}
    benchmarks = len({r.benchmark for r in report.results})
    models = len(report.checkpoints)
    ctx.log(f"  {models} model{'s' * (models != 1)} x {benchmarks} benchmarks ({ctx.suite}): "
            + ", ".join(f"{n} {s}" for s, n in jobs.items()))
    return jobs


def step_select(ctx: Context) -> dict[str, Any]:
    from suite.select.selector import SelectOptions, find_candidates, select, write_recipe

    s = ctx.config.select
    # The roles file names benchmarks of the configured suite; the offline suite uses its own default roles.
    config = Path(ctx.config.resolve(s.config) or "") if s.config and ctx.suite == ctx.config.eval.suite else None
    options = SelectOptions(suite=ctx.suite, config=config,
                            limit=s.limit, backend=ctx.config.eval.backend, data_dir=ctx.data_dir,
                            work_dir=ctx.path("select", "candidates"),
                            allow_code_execution=ctx.config.eval.allow_code_execution)
    recipe = select(ctx.store, find_candidates(ctx.store, run=ctx.path("train")), s.strategy, options)
    path = write_recipe(recipe, ctx.path("select", "recipe.yaml"))
    for m in recipe.models:
        ctx.log(f"  {m.role or 'chosen'}: {m.name} weight {m.params['weight']}")
    return {"recipe": str(path)}


def step_build(ctx: Context) -> dict[str, Any]:
    from growth.merge.execute import plan_merge, run_merge
    from growth.merge.recipe import load_recipe

    path = run_merge(plan_merge(load_recipe(ctx.outputs["select"]["recipe"])), ctx.path("final"), force=True)
    return {"path": str(path), "model_id": ctx.store.register_model(path, kind="merged", name=ctx.name("final"))}


def step_evaluate(ctx: Context) -> dict[str, Any]:
    from suite.eval.sweep import sweep

    report = sweep([ctx.outputs["build"]["path"]], ctx.eval_options(), store=ctx.store)
    log_jobs(ctx, report)
    return {"results": {r.benchmark: r.score for r in report.results}}


def step_report(ctx: Context) -> dict[str, Any]:
    from results.leaderboard import build_leaderboard
    from results.leaderboard_format import render
    from results.plots import plot_compare, plot_run
    from results.regress import regress, to_junit
    from results.report import ReportOptions, write_report
    from results.reported_scores import load_reported

    out = ctx.path("report")
    reported = load_reported(ctx.config.report.reported)
    stage = ctx.outputs["grow"].get("stage")
    models = [ctx.name("seed"), *([stage["name"]] if stage else []), ctx.name("grown")] \
        if ctx.config.eval.seed_model else []
    models += [f"{ctx.name('train')}@*", ctx.name("final")]
    comparable = ctx.suite == ctx.config.eval.suite
    board = build_leaderboard(ctx.store, reported=reported if comparable else None, models=models, suite=ctx.suite,
                              marks=ctx.config.report.marks)
    table = render(board, "md")
    write_text(out / "leaderboard.md", table)
    outputs: dict[str, Any] = {"leaderboard": str(out / "leaderboard.md"), "table": table,
                               **evidence(ctx, models, out)}
    outputs["run_plot"] = str(plot_run(ctx.store, ctx.name("train"), out / "run.png", suite=ctx.suite))
    if comparable:
        outputs["compare_plot"] = str(plot_compare(ctx.store, ctx.name("final"), reported, out / "compare.png",
                                                   suite=ctx.suite))
        rep = regress(ctx.store, ctx.name("final"), f"reported:{reported.name}", abs_tol=ctx.config.report.abs_tol,
                      z=ctx.config.report.z, suite=ctx.suite, allow_mismatch=True)
        write_json(out / "regress.json", rep.to_dict())
        write_text(out / "regress.xml", to_junit(rep))
        outputs["regress"] = {"json": str(out / "regress.json"), "passed": rep.passed}
    options = ReportOptions(run=ctx.name("train"), suite=ctx.suite, reported=reported.name if comparable else None,
                            abs_tol=ctx.config.report.abs_tol, z=ctx.config.report.z)
    outputs["page"] = str(write_report(ctx.store, out / "report.html", options))
    return outputs


def evidence(ctx: Context, models: list[str], out: Path) -> dict[str, Any]:
    """What the numbers rest on: documents and standard error per model and benchmark, whether the function-
    preserving growth steps left every score unchanged, and the paired test of the final model against the seed."""
    from results.compare import compare, same_scores
    from results.measured import precision_lines
    from suite.store.queries import reading, resolve_models

    with reading(ctx.store) as con:
        lines = precision_lines(con, resolve_models(con, models), ctx.suite)
    outputs: dict[str, Any] = {"precision": lines}
    if not ctx.config.eval.seed_model:
        return outputs
    grow = ctx.outputs["grow"]
    checked = grow["stage"] if "stage" in grow else {"name": ctx.name("grown")} if grow["preserving"] else None
    if checked is not None:
        differ = same_scores(ctx.store, checked["name"], ctx.name("seed"), suite=ctx.suite)
        steps = ", ".join(checked.get("steps", ["every step"]))
        outputs["growth_check"] = (
            f"{checked['name']} (function-preserving steps: {steps}) scores exactly as {ctx.name('seed')} on every "
            "benchmark" if not differ else
            f"{checked['name']} (function-preserving steps: {steps}) differs from {ctx.name('seed')} on "
            f"{', '.join(differ)}: the growth did not preserve the function")
    report = compare(ctx.store, ctx.name("final"), ctx.name("seed"), suite=ctx.suite)
    write_json(out / "final_vs_seed.json", report.to_dict())
    outputs["final_vs_seed"] = report.short_lines()
    write_text(out / "evidence.md", "\n".join(
        ["# What the scores rest on", "", "```", *lines, "```", "", f"Growth: {outputs.get('growth_check', '-')}",
         "", f"# {report.model_a} vs {report.model_b}, paired over the same documents", "",
         *[f"- {line}" for line in report.lines()], ""]))
    outputs["evidence"] = str(out / "evidence.md")
    return outputs


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "seed": step_seed, "grow": step_grow, "train": step_train, "sweep": step_sweep, "select": step_select,
    "build": step_build, "evaluate": step_evaluate, "report": step_report}


# --- orchestration -----------------------------------------------------------------------------------------------

def step_hashes(config: PipelineConfig, suite: str) -> dict[str, str]:
    """Each step's hash covers its own sections and, through the chain, every earlier step's."""
    hashes, previous = {}, suite
    for step in STEPS:
        previous = hashlib.sha256((previous + config.section_hash(*DEPENDS[step])).encode()).hexdigest()[:16]
        hashes[step] = previous
    return hashes


def marker(workdir: Path, step: str) -> Path:
    return workdir / ".steps" / f"{step}.json"


def read_marker(workdir: Path, step: str) -> dict[str, Any] | None:
    path = marker(workdir, step)
    return json.loads(path.read_text()) if path.exists() else None


def steps_to_run(start: str | None, only: str | None) -> list[str]:
    for value in (start, only):
        if value is not None and value not in STEPS:
            raise ConfigError(f"unknown step {value!r}; steps: {', '.join(STEPS)}")
    if start and only:
        raise ConfigError("give --from or --only, not both")
    if only:
        return [only]
    return list(STEPS[STEPS.index(start):]) if start else list(STEPS)


def say(line: str) -> None:
    """The pipeline's own lines: on the user's terminal, also while a step's third-party output is captured."""
    terminal().say(line)


def run_pipeline(config: PipelineConfig, workdir: Path, store: Store, *, data_dir: Path | None = None,
                 start: str | None = None, only: str | None = None, log: Callable[[str], None] = say,
                 verbose: bool = False) -> dict[str, dict[str, Any]]:
    """Run (or continue) the pipeline; returns every step's outputs. `start`/`only` force those steps to rerun.
    Third-party output of each step goes to `<workdir>/pipeline.log` unless `verbose`."""
    import time

    selected = steps_to_run(start, only)
    forced = set(selected) if (start or only) else set()
    ctx = Context(config, workdir.absolute(), store, data_dir, log)
    hashes = step_hashes(config, ctx.suite)
    eval_spread(config, load_suite(ctx.suite))
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    write_text(ctx.path("pipeline.yaml"), Path(config.source).read_text() if config.source else "")
    log_file = ctx.path("pipeline.log")
    if not verbose:
        log(f"pipeline {config.name} in {ctx.workdir}; library output goes to {log_file} (growbench -v shows it)")
    for step in STEPS[: STEPS.index(selected[-1]) + 1]:
        done = read_marker(ctx.workdir, step)
        fresh = done is not None and done["hash"] == hashes[step]
        if step not in selected and not fresh:
            raise ConfigError(f"step {step!r} has not completed in {workdir} for this config; run the earlier "
                              f"steps first (e.g. --from {step})")
        if fresh and step not in forced:
            ctx.outputs[step] = done["outputs"]
            if step in selected:
                log(f"[{step}] done already, skipped")
            continue
        log(f"[{step}] running")
        t = time.perf_counter()
        try:
            with capture(log_file, verbose=verbose, header=f"[{step}]"):
                outputs = RUNNERS[step](ctx)
        except BaseException:
            if not verbose:
                log(f"[{step}] failed; library output of the step is in {log_file}")
            raise
        outputs["seconds"] = round(time.perf_counter() - t, 1)
        ctx.outputs[step] = outputs
        write_json(marker(ctx.workdir, step), {"hash": hashes[step], "outputs": outputs})
        log(f"[{step}] finished in {outputs['seconds']} s")
    return ctx.outputs


# --- dry run -----------------------------------------------------------------------------------------------------

def eval_spread(config: PipelineConfig, suite: Any) -> tuple[Any, Any, list[str | None]]:
    """The eval steps' engine settings, distribution and local worker groups, checked as the sweep checks them
    (device counts aside): the dry run prints them, and a real run checks them before its first step, so a bad
    `eval.engine` or `eval.executor` fails at once instead of after growth and training."""
    from suite.eval.backends import default_backend
    from suite.eval.engine_settings import resolve_engine
    from suite.eval.workers import plan_workers

    ev = config.eval
    engine = resolve_engine(suite.engine, ev.engine, backend=ev.backend or default_backend())
    dist = ev.distribution()
    groups = [] if dist.executor == "ray" else plan_workers(dist.workers, dist.devices, engine.devices_per_engine,
                                                             gpu_count=0)
    return engine, dist, groups


def dry_run(config: PipelineConfig, data_dir: Path | None = None) -> list[str]:
    """What the real run would do, computed without weights: parameters per growth step, tokens and steps per
    training stage, checkpoints, and the number of eval jobs."""
    from growth.fixture import TinySpec, qwen3_config
    from growth.grow import plan_growth, read_config_file
    from growth.plan import load_plan, preserving_steps
    from training.mixture import load_mixture
    from training.trainer import stage_steps

    lines = [f"pipeline {config.name}: {config.description}".rstrip(": ")]
    seed = config.seed
    if seed.fixture is not None:
        model_config = qwen3_config(TinySpec(**seed.fixture), 0, 0)
        lines.append(f"seed: tiny fixture {seed.fixture}")
    else:
        where = config.resolve(seed.path) or ""
        if Path(where, "config.json").exists():
            model_config = read_config_file(where)
        elif seed.config:
            model_config = read_config_file(config.resolve(seed.config) or seed.config)
        else:
            raise ConfigError(f"seed {where} is not on this machine; give seed.config (a config.json) for --dry-run")
        lines.append(f"seed: {seed.path}")
    grown = plan_growth(model_config, config.resolve(config.grow.plan) or config.grow.plan, seed=config.grow.seed)
    lines.append("grow (" + config.grow.plan + "): " +
                 " -> ".join(f"{label} {count:,}" for label, count in grown.stage_counts()))
    final = grown.final.config
    lines.append(f"  grown config: {final['num_hidden_layers']} layers, hidden {final['hidden_size']}, "
                 f"FFN {final['intermediate_size']}, tie_word_embeddings {final.get('tie_word_embeddings')}")
    ctx = Context(config, Path("."), Store(), data_dir, print, {"grow": {"path": "<grown>"}})
    tc = train_config(ctx)
    stages = [st for name in tc.data.mixtures for st in load_mixture(name).stages]
    ends = stage_steps(stages, tc.tokens_per_step)
    total = min(ends[-1], tc.max_steps) if tc.max_steps else ends[-1]
    lines.append(f"train ({config.train.config}): seq_len {tc.seq_len} x global batch {tc.global_batch} = "
                 f"{tc.tokens_per_step:,} tokens/step, lr {tc.optimizer.lr}, warmup {tc.schedule.warmup_steps}")
    begin = 0
    for st, end in zip(stages, ends):
        lines.append(f"  stage {st.name}: {int(st.tokens):,} tokens, steps {begin + 1}..{end} ({end - begin:,} steps)")
        begin = end
    checkpoints = math.ceil(total / tc.checkpoint.every)
    lines.append(f"  {total:,} steps in all; a checkpoint every {tc.checkpoint.every} steps -> {checkpoints} checkpoints")
    suite_name = config.eval.suite if data_dir is not None or config.eval.offline_suite is None else \
        config.eval.offline_suite
    suite = load_suite(suite_name)
    benchmarks = suite.select(config.eval.benchmarks if suite_name == config.eval.suite else [])
    plan = load_plan(config.resolve(config.grow.plan) or config.grow.plan)
    preserving = preserving_steps(plan)
    references = (["seed"] + ([plan.steps[preserving - 1].stage or "preserving"]
                              if 0 < preserving < len(plan.steps) else []) + ["grown"]) if config.eval.seed_model else []
    models = len(references) + checkpoints + 1
    limit = config.eval.limit if suite_name == config.eval.suite else config.eval.offline_limit
    lines.append(f"eval ({suite_name}, backend {config.eval.backend or 'vllm if importable, else hf'}, limit "
                 f"{limit or 'none'}): {len(benchmarks)} benchmarks x {models} models "
                 f"({', '.join(references + [f'{checkpoints} checkpoints', 'final'])}) "
                 f"= {len(benchmarks) * models} eval jobs")
    engine, dist, groups = eval_spread(config, suite)
    per = engine.devices_per_engine
    where = (f"Ray tasks of {per} device(s) each" if dist.executor == "ray" else
             f"{len(groups)} local workers" + (f" on devices {dist.devices}" if dist.devices else "") if groups else
             "the pipeline's own process")
    lines.append(f"  {models} engine loads (one per model), on {where}; engine settings "
                 f"{engine.changed() or 'default'}")
    lines.append(f"select: {config.select.strategy}; merge -> final model; report against "
                 f"reported:{config.report.reported}")
    lines += card_steps_note(config, suite_name, total, tc, sum(int(st.tokens) for st in stages))
    return lines


def card_steps_note(config: PipelineConfig, suite: str, total: int, tc: Any, tokens: int) -> list[str]:
    """A note when the anchors recipe records card iterations (`card_step`) beyond the steps this schedule has:
    the OpenSeek-Mid-v1 card merged iterations its own batch size, sequence length and token total do not reach."""
    if config.select.strategy != "anchors":
        return []
    from growth.foundation.config import read_yaml
    from suite.select.strategies.anchors import load_anchors

    given = config.select.config if config.select.config and suite == config.eval.suite else None
    roles = load_anchors(load_suite(suite), read_yaml(config.resolve(given) or given) if given else None).roles
    card = sorted(r.card_step for r in roles if r.card_step is not None)
    if not card or card[-1] <= total:
        return []
    every = tc.checkpoint.every
    saved = list(range(every, total, every)) + [total]
    shown = ", ".join(f"{s:,}" for s in saved[:2]) + f", ..., {saved[-2]:,} and {saved[-1]:,}" if len(saved) > 3 \
        else ", ".join(f"{s:,}" for s in saved)
    return [f"  note: the card merged iterations {card[0]:,}-{card[-1]:,}, beyond the {total:,} steps its own "
            f"budget gives ({tokens:,} tokens at {tc.global_batch:,} x {tc.seq_len:,} = {tc.tokens_per_step:,} "
            "tokens per step, stage by stage); the card does not say why",
            f"  this schedule's {len(saved)} checkpoints are steps {shown}; the anchors roles choose among those"]
