"""The pipeline's plan: everything a run will do, worked out from the config before any weights load.

    plan = plan_pipeline(load_pipeline("openseek-mid-v1"))  # work dir runs/openseek-mid-v1, no benchmark mirror
    print("\\n".join(describe(plan)))        # what `growbench pipeline --dry-run` prints
    run_pipeline(plan, Store())             # what the real run executes (suite/pipeline/execute.py)

One function, `plan_pipeline`, resolves the config once: the seed, the growth plan with parameters per stage, the
training config with its stages, steps and checkpoint steps, the suite and benchmarks the eval steps run, every model
they evaluate (by its name in the store), the engine settings and local workers, the selection options and the
report's target. The dry run prints that plan; the steps (suite/pipeline/steps.py) read what they need from it, so
the two cannot disagree. Bad input (a bad engine setting or executor, an unknown benchmark) fails here, before the
first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from growth.foundation.errors import ConfigError
from results.evidence import GrowthClaim
from suite.eval.benchmarks import Benchmark, Suite
from suite.eval.options import Distribution, EvalOptions
from suite.pipeline.config import EvalSection, GrowSection, PipelineConfig, SeedSection, TrainSection

Resolve = Callable[[str | None], str | None]
"""How a config resolves a path it names (PipelineConfig.resolve: beside the config file when it exists there)."""

STEPS = ("seed", "grow", "train", "sweep", "select", "build", "evaluate", "report")


@dataclass(frozen=True)
class Model:
    """A model the run writes and evaluates: a short label, its name in the store, its folder (and training step)."""

    label: str
    name: str
    path: Path
    step: int | None = None


@dataclass(frozen=True)
class SeedPlan:
    model: Model
    fixture: Any  # growth.fixture.TinySpec, or None: the checkpoint at model.path
    config: dict[str, Any]
    """The seed's config.json (for a fixture: the one the factory writes)."""


@dataclass(frozen=True)
class GrowPlan:
    plan: Any  # growth.plan.PlanConfig
    growth: Any  # growth.plan.GrowthPlan: parameters per stage, the grown config
    model: Model
    seed: int | None
    dtype: str | None
    verify: bool
    preserving: int
    """How many leading steps of the plan preserve the function."""
    stage: Model | None
    """The checkpoint of those steps, when they are some but not all of the plan (e.g. the card's width-expanded
    stage); its scores must equal the seed's."""
    stage_plan: Any  # growth.plan.PlanConfig of the preserving steps, or None


@dataclass(frozen=True)
class TrainPlan:
    config: Any  # training.config.TrainConfig, with model, run_dir and run_id set by the pipeline
    stages: list[tuple[str, int, int, int]]
    """(stage, tokens, first step, last step) per stage of the mixture."""
    total: int
    """Steps in all (the stages' budget, or max_steps when smaller)."""
    checkpoints: list[Model]
    """The exported checkpoints, step by step (a multiple of checkpoint.every, and the last step)."""

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def steps(self) -> list[int]:
        return [m.step for m in self.checkpoints if m.step is not None]


@dataclass(frozen=True)
class EvalPlan:
    options: EvalOptions
    """What the sweep and evaluate steps pass to the evaluator (the suite resolved, the mirror set)."""
    benchmarks: list[Benchmark]
    offline: bool
    """The offline suite runs (no mirror): the report compares with no reported set."""
    engine: Any  # suite.eval.engine_settings.EngineSettings
    distribution: Distribution
    groups: list[str | None]
    """Local worker groups (their CUDA_VISIBLE_DEVICES; none: the pipeline's own process), device counts aside."""
    references: list[Model]
    """The seed, the function-preserving stage and the grown model, when eval.seed_model."""
    swept: list[Model]
    """Every model the sweep step evaluates: the references and the training checkpoints."""
    final: Model

    @property
    def suite(self) -> Suite:
        return self.options.suite

    @property
    def models(self) -> list[Model]:
        return [*self.swept, self.final]

    @property
    def jobs(self) -> int:
        return len(self.benchmarks) * len(self.models)


@dataclass(frozen=True)
class SelectPlan:
    strategy: str
    options: Any  # suite.select.selector.SelectOptions
    recipe: Path


@dataclass(frozen=True)
class ReportPlan:
    reported: str
    models: list[str]
    """The leaderboard's columns: the references, every checkpoint of the run (a name glob) and the final model."""
    seed: str | None
    """The seed the final model is tested against (None: the seed is not evaluated)."""
    growth: GrowthClaim | None
    """The checkpoint whose scores must equal the seed's: the function-preserving stage, or the grown model when
    every step preserves the function."""
    out: Path


@dataclass(frozen=True)
class PipelinePlan:
    config: PipelineConfig
    workdir: Path
    data_dir: Path | None
    suite_key: str
    """The suite as the config names it (its hash chain starts there)."""
    seed: SeedPlan
    grow: GrowPlan
    train: TrainPlan
    eval: EvalPlan
    select: SelectPlan
    report: ReportPlan
    steps: tuple[str, ...] = STEPS

    def path(self, *parts: str) -> Path:
        return self.workdir.joinpath(*parts)


def plan_pipeline(config: PipelineConfig, workdir: Path | None = None, data_dir: Path | None = None
                  ) -> PipelinePlan:
    """The plan of a run of `config` in `workdir` (default runs/<config name>) with the benchmark mirror `data_dir`
    (None: no mirror); reads no weights."""
    workdir = (workdir or Path("runs") / config.name).absolute()

    def model(label: str, what: str, *path: str) -> Model:
        return Model(label, f"{config.name}-{what}", workdir.joinpath(*path))

    from growth.plan import load_plan

    seed = plan_seed(config.seed, config.resolve, model("seed", "seed", "seed"))
    grow = plan_grow(config.grow, load_plan(config.resolve(config.grow.plan) or config.grow.plan), seed, model)
    train = plan_train(config.train, config.resolve, grow.model, workdir / "train", f"{config.name}-train")
    offline = config.eval.offline(data_dir)
    options = config.eval.options(data_dir)
    references = [seed.model, *([grow.stage] if grow.stage else []), grow.model] if config.eval.seed_model else []
    final = model("final", "final", "final")
    engine, distribution, groups = eval_spread(config.eval, options)
    eval_plan = EvalPlan(options, options.suite.select(list(options.benchmarks)), offline, engine, distribution,
                         groups, references, [*references, *train.checkpoints], final)
    return PipelinePlan(config, workdir, data_dir, config.eval.suite_for(data_dir), seed, grow, train, eval_plan,
                        _select(config, options, workdir, offline),
                        _report(config, eval_plan, seed, grow, train, workdir))


def plan_seed(seed: SeedSection, resolve: Resolve, fixture_model: Model) -> SeedPlan:
    """The seed: the tiny fixture (written to `fixture_model`'s folder) or a checkpoint, whose config.json comes from
    the checkpoint, else from `seed.config` (a dry run without the weights)."""
    from growth.fixture import TinySpec, qwen3_config
    from growth.grow import read_config_file

    if seed.fixture is not None:
        spec = TinySpec(**seed.fixture)
        return SeedPlan(fixture_model, spec, qwen3_config(spec, 0, 0))
    where = resolve(seed.path) or ""
    if Path(where, "config.json").exists():
        found = read_config_file(where)
    elif seed.config:
        found = read_config_file(resolve(seed.config) or seed.config)
    else:
        raise ConfigError(f"seed {where} is not on this machine; give seed.config (a config.json) to plan the run "
                          "without it (--dry-run)")
    return SeedPlan(Model("seed", fixture_model.name, Path(where)), None, found)


def plan_grow(g: GrowSection, plan: Any, seed: SeedPlan, model: Callable[..., Model]) -> GrowPlan:
    """Growth of the seed by `plan` (a growth.plan.PlanConfig) with the section's seed, dtype and verify; `model`
    names the outputs: model(label, name suffix, folder)."""
    from growth.grow import plan_growth
    from growth.plan import first_steps, preserving_steps

    preserving = preserving_steps(plan)
    stage, stage_plan = None, None
    if 0 < preserving < len(plan.steps):
        # written whatever eval.seed_model says, so turning that on later needs no re-grow
        stage_plan = first_steps(plan, preserving)
        label = stage_plan.steps[-1].stage or "preserving"
        stage = model(label, label, f"grown-{label}")
    return GrowPlan(plan, plan_growth(seed.config, plan, seed=g.seed), model("grown", "grown", "grown"), g.seed,
                    g.dtype, g.verify, preserving, stage, stage_plan)


def plan_train(t: TrainSection, resolve: Resolve, start: Model, run_dir: Path, run_id: str,
               overrides: dict[str, Any] | None = None) -> TrainPlan:
    """Training of `start` per the section (and `overrides` over its own), into `run_dir` as run `run_id`."""
    from growth.foundation.config import merged
    from training.checkpointing import step_name
    from training.config import load_config
    from training.mixture import load_mixture
    from training.trainer import stage_steps

    tc = load_config(resolve(t.config) or t.config,
                     merged(merged(t.overrides, overrides or {}), {"model": str(start.path), "run_dir": str(run_dir),
                                                                   "run_id": run_id}))
    stages = [st for name in tc.data.mixtures for st in load_mixture(name).stages]
    ends = stage_steps(stages, tc.tokens_per_step)
    total = min(ends[-1], tc.max_steps) if tc.max_steps else ends[-1]
    rows, begin = [], 0
    for st, end in zip(stages, ends):
        rows.append((st.name, int(st.tokens), begin + 1, end))
        begin = end
    every = tc.checkpoint.every
    steps = [*range(every, total, every), total]  # the trainer exports at every multiple and at the last step
    checkpoints = [Model(f"step {s}", f"{run_id}@{s}", run_dir / "checkpoints" / step_name(s), s) for s in steps]
    return TrainPlan(tc, rows, total, checkpoints)


def eval_spread(section: EvalSection, options: EvalOptions) -> tuple[Any, Distribution, list[str | None]]:
    """The eval steps' engine settings, distribution and local worker groups, checked as the sweep checks them
    (device counts aside), so a bad `eval.engine` or `eval.executor` fails before growth and training."""
    from suite.eval.backends import default_backend
    from suite.eval.engine_settings import resolve_engine
    from suite.eval.workers import plan_workers

    engine = resolve_engine(options.suite.engine, options.engine, backend=options.backend or default_backend())
    dist = section.distribution()
    groups = [] if dist.executor == "ray" else plan_workers(dist.workers, dist.devices, engine.devices_per_engine,
                                                             gpu_count=0)
    return engine, dist, groups


def _select(config: PipelineConfig, options: EvalOptions, workdir: Path, offline: bool) -> SelectPlan:
    from suite.select.selector import SelectOptions

    s = config.select
    # The roles file names benchmarks of the configured suite; the offline suite uses its own default roles.
    roles = Path(config.resolve(s.config) or "") if s.config and not offline else None
    chosen_by = SelectOptions(suite=options.suite, config=roles, limit=s.limit, backend=options.backend,
                              data_dir=options.data_dir, work_dir=workdir / "select" / "candidates",
                              allow_code_execution=options.allow_code_execution)
    return SelectPlan(s.strategy, chosen_by, workdir / "select" / "recipe.yaml")


def _report(config: PipelineConfig, ev: EvalPlan, seed: SeedPlan, grow: GrowPlan, train: TrainPlan,
            workdir: Path) -> ReportPlan:
    models = [m.name for m in ev.references] + [f"{train.run_id}@*", ev.final.name]
    if not config.eval.seed_model:
        return ReportPlan(config.report.reported, models, None, None, workdir / "report")
    claim = (GrowthClaim(grow.stage.name, [s.op for s in grow.stage_plan.steps]) if grow.stage is not None else
             GrowthClaim(grow.model.name) if grow.preserving == len(grow.plan.steps) else None)
    return ReportPlan(config.report.reported, models, seed.model.name, claim, workdir / "report")


def describe(plan: PipelinePlan) -> list[str]:
    """The plan as `--dry-run` prints it: parameters per growth stage, tokens and steps per training stage,
    checkpoints, eval jobs and where they run, selection and report."""
    config = plan.config
    lines = [f"pipeline {config.name}: {config.description}".rstrip(": ")]
    lines.append(f"seed: tiny fixture {config.seed.fixture}" if plan.seed.fixture is not None
                 else f"seed: {config.seed.path}")
    lines.append(f"grow ({config.grow.plan}): " +
                 " -> ".join(f"{label} {count:,}" for label, count in plan.grow.growth.stage_counts()))
    final = plan.grow.growth.final.config
    lines.append(f"  grown config: {final['num_hidden_layers']} layers, hidden {final['hidden_size']}, "
                 f"FFN {final['intermediate_size']}, tie_word_embeddings {final.get('tie_word_embeddings')}")
    tr, tc = plan.train, plan.train.config
    lines.append(f"train ({config.train.config}): seq_len {tc.seq_len} x global batch {tc.global_batch} = "
                 f"{tc.tokens_per_step:,} tokens/step, lr {tc.optimizer.lr}, warmup {tc.schedule.warmup_steps}")
    for name, tokens, first, last in tr.stages:
        lines.append(f"  stage {name}: {tokens:,} tokens, steps {first}..{last} ({last - first + 1:,} steps)")
    lines.append(f"  {tr.total:,} steps in all; a checkpoint every {tc.checkpoint.every} steps -> "
                 f"{len(tr.checkpoints)} checkpoints")
    ev = plan.eval
    labels = [m.label for m in ev.references] + [f"{len(tr.checkpoints)} checkpoints", "final"]
    lines.append(f"eval ({plan.suite_key}, backend {ev.options.backend or 'vllm if importable, else hf'}, limit "
                 f"{ev.options.limit or 'none'}): {len(ev.benchmarks)} benchmarks x {len(ev.models)} models "
                 f"({', '.join(labels)}) = {ev.jobs} eval jobs")
    per = ev.engine.devices_per_engine
    where = (f"Ray tasks of {per} device(s) each" if ev.distribution.executor == "ray" else
             f"{len(ev.groups)} local workers" + (f" on devices {ev.distribution.devices}"
                                                  if ev.distribution.devices else "") if ev.groups else
             "the pipeline's own process")
    lines.append(f"  {len(ev.models)} engine loads (one per model), on {where}; engine settings "
                 f"{ev.engine.changed() or 'default'}")
    lines.append(f"select: {plan.select.strategy}; merge -> final model; report against "
                 f"reported:{plan.report.reported}")
    return lines + card_steps_note(plan)


def card_steps_note(plan: PipelinePlan) -> list[str]:
    """A note when the anchors recipe records card iterations (`card_step`) beyond the steps this schedule has:
    the OpenSeek-Mid-v1 card merged iterations its own batch size, sequence length and token total do not reach."""
    if plan.select.strategy != "anchors":
        return []
    from growth.foundation.config import read_yaml
    from suite.select.strategies.anchors import load_anchors

    roles_file = plan.select.options.config
    roles = load_anchors(plan.eval.suite, read_yaml(roles_file) if roles_file else None).roles
    card = sorted(r.card_step for r in roles if r.card_step is not None)
    total, tc = plan.train.total, plan.train.config
    if not card or card[-1] <= total:
        return []
    saved = plan.train.steps
    shown = ", ".join(f"{s:,}" for s in saved[:2]) + f", ..., {saved[-2]:,} and {saved[-1]:,}" if len(saved) > 3 \
        else ", ".join(f"{s:,}" for s in saved)
    tokens = sum(tokens for _, tokens, _, _ in plan.train.stages)
    return [f"  note: the card merged iterations {card[0]:,}-{card[-1]:,}, beyond the {total:,} steps its own "
            f"budget gives ({tokens:,} tokens at {tc.global_batch:,} x {tc.seq_len:,} = {tc.tokens_per_step:,} "
            "tokens per step, stage by stage); the card does not say why",
            f"  this schedule's {len(saved)} checkpoints are steps {shown}; the anchors roles choose among those"]
