"""The study's plan: a set of pipeline plans that share a seed, data and suite, worked out before any weights load.

    plan = plan_study(load_study("tiny"))       # work dir runs/study-tiny, no benchmark mirror
    print("\\n".join(describe(plan)))           # what `growbench study --dry-run` prints
    run_study(plan, Store())                    # what the real run executes (suite/study/execute.py)

The seed is the pipeline's (SeedPlan), trained first when the config says so (a TrainPlan of its own). Every arm is
the pipeline's grow and train plans over that trained seed: a GrowPlan for grown arms (the study's plan with the
arm's overrides), the grown architecture's config for scratch, nothing for the seed-continued arm; then a TrainPlan
from the study's train section with the arm's own keys over it. Every arm reads the same prepared data with the same
seed, seq_len, global batch, held-out sequences and step count; the plan checks that, so arms differ only in where
they start and how they are optimised. Bad input fails here, before anything runs: an unknown plan key, a budget
smaller than one step, arms whose models cannot share a tokenizer, a bad eval setting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import Benchmark
from suite.eval.options import Distribution, EvalOptions
from suite.pipeline.plan import (
    GrowPlan,
    Model,
    SeedPlan,
    TrainPlan,
    eval_spread,
    plan_grow,
    plan_seed,
    plan_train,
)
from suite.study.config import Arm, StudyConfig

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ArmPlan:
    name: str
    spec: Arm
    start: Model
    """The model the arm trains from (its folder: written by the arm for grown and scratch arms)."""
    config: dict[str, Any]
    """The start model's config.json."""
    parameters: int
    grow: GrowPlan | None
    """Grown arms: the growth of the trained seed. Scratch arms: the growth whose architecture they take."""
    train: TrainPlan
    flops_per_token: float
    """Training FLOPs per token of the arm's model at the study's seq_len (training/throughput.py)."""
    preserving: bool
    """The start model computes the trained seed's function (the seed itself, or a plan of preserving steps only)."""
    hash: str

    @property
    def tokens(self) -> int:
        return self.train.total * self.train.config.tokens_per_step

    @property
    def flops(self) -> float:
        return self.flops_per_token * self.tokens

    @property
    def final(self) -> Model:
        return self.train.checkpoints[-1]


@dataclass(frozen=True)
class StudyEval:
    options: EvalOptions
    suite_key: str
    benchmarks: list[Benchmark]
    engine: Any  # suite.eval.engine_settings.EngineSettings
    distribution: Distribution
    groups: list[str | None]
    start_models: bool
    """Also evaluate each arm's start model (eval.seed_model)."""

    def models(self, arm: ArmPlan) -> list[Model]:
        return ([arm.start] if self.start_models else []) + arm.train.checkpoints


@dataclass(frozen=True)
class StudyPlan:
    config: StudyConfig
    workdir: Path
    data_dir: Path | None
    seed: SeedPlan
    pretrain: TrainPlan | None
    trained_seed: Model
    data: Path
    """The prepared data every arm reads."""
    prepare: Any  # training.config.TrainConfig the data is prepared from (the arms' shared data settings)
    eval: StudyEval
    arms: list[ArmPlan]
    pairs: list[tuple[str, str]]
    """(arm, control) for every paired comparison, final checkpoint against final checkpoint."""
    hashes: dict[str, str]
    """The seed's and the data's hashes (each arm carries its own)."""

    @property
    def steps(self) -> int:
        return self.arms[0].train.total

    @property
    def tokens(self) -> int:
        return self.arms[0].tokens

    @property
    def report(self) -> Path:
        return self.workdir / "report" / "study.html"

    def arm(self, name: str) -> ArmPlan:
        return next(a for a in self.arms if a.name == name)

    def path(self, *parts: str) -> Path:
        return self.workdir.joinpath(*parts)


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_study(config: StudyConfig, workdir: Path | None = None, data_dir: Path | None = None) -> StudyPlan:
    """The plan of `config` run in `workdir` (default runs/study-<name>) with the benchmark mirror `data_dir`."""
    workdir = (workdir or Path("runs") / f"study-{config.name}").absolute()
    for arm in config.arms:
        if not NAME.fullmatch(arm.name):
            raise ConfigError(f"arm name {arm.name!r}: use letters, digits, '.', '_' or '-' (it names folders and "
                              "models)")
    seed = plan_seed(config.seed, config.resolve, Model("seed", f"{config.name}-seed", workdir / "seed"))
    pretrain = None
    trained = seed.model
    if config.seed.train is not None:
        pretrain = plan_train(config.seed.train, config.resolve, seed.model, workdir / "seed-train",
                              f"{config.name}-seed")
        trained = pretrain.checkpoints[-1]
    trained_seed = SeedPlan(trained, None, seed.config)
    shared = _shared_training(config, workdir, trained)
    data = Path(shared.config.data.prepared)
    hashes = {"seed": digest(dataclasses.asdict(config.seed))}
    hashes["data"] = digest(hashes["seed"], _data_settings(shared.config))  # the folder included, not the workers
    arms = [_arm(config, arm, trained_seed, shared, workdir, hashes) for arm in config.arms]
    _check_tokenizers(arms, seed)
    options = config.eval.options(data_dir)
    engine, distribution, groups = eval_spread(config.eval, options)
    ev = StudyEval(options, config.eval.suite_for(data_dir), options.suite.select(list(options.benchmarks)),
                   engine, distribution, groups, config.eval.seed_model)
    pairs: list[tuple[str, str]] = []
    for control in config.compare.against:
        pairs += [(a.name, control) for a in arms if a.name != control and (control, a.name) not in pairs]
    return StudyPlan(config, workdir, data_dir, seed, pretrain, trained, data, shared.config, ev, arms, pairs, hashes)


def _shared_training(config: StudyConfig, workdir: Path, start: Model) -> TrainPlan:
    """The training every arm shares: the study's budget in whole steps, on the prepared data (the study's
    data.prepared, else the train config's, else WORKDIR/data), with held-out loss (every 1/16 of the budget unless
    the train config says)."""
    probe = plan_train(config.train, config.resolve, start, workdir, "shared")
    given = config.data.prepared or probe.config.data.prepared
    data = Path(config.resolve(given) if given else workdir / "data").absolute()
    per_step = probe.config.tokens_per_step
    steps = config.train.tokens // per_step
    if steps < 1:
        raise ConfigError(f"train.tokens ({config.train.tokens:,}) is smaller than one step (seq_len "
                          f"{probe.config.seq_len} x global_batch {probe.config.global_batch} = {per_step:,} tokens)")
    every = probe.config.data.validation.every or max(1, steps // 16)
    shared = plan_train(config.train, config.resolve, start, workdir, "shared", _shared_overrides(steps, data, every))
    if shared.total < steps:
        raise ConfigError(f"the train config's mixture holds {shared.total:,} steps of {per_step:,} tokens, fewer than "
                          f"train.tokens ({config.train.tokens:,}: {steps:,} steps); give the mixture's stages more "
                          "tokens")
    return shared


def _shared_overrides(steps: int, data: Path, every: int) -> dict[str, Any]:
    return {"max_steps": steps, "data": {"prepared": str(data), "validation": {"every": every}}}


def _data_settings(tc: Any) -> dict[str, Any]:
    """Everything the data stream and the held-out set depend on (equal for every arm)."""
    return {"data": dataclasses.asdict(tc.data), "seq_len": tc.seq_len, "global_batch": tc.global_batch,
            "max_steps": tc.max_steps}


def apply_overrides(plan: Any, overrides: dict[str, Any], where: str) -> Any:
    """The growth plan (growth.plan.PlanConfig) with `<op or stage>.<parameter>` values changed; a key naming no step
    or no parameter of its operator is a ConfigError."""
    if not overrides:
        return plan
    steps = list(plan.steps)
    for key, value in overrides.items():
        head, _, param = key.partition(".")
        matches = [i for i, s in enumerate(steps) if head in (s.op, s.stage)]
        names = ", ".join(s.op + (f" ({s.stage})" if s.stage else "") for s in steps)
        if not param or len(matches) != 1:
            why = "is not <op or stage>.<parameter>" if not param else \
                f"names {'no' if not matches else 'more than one'} step of plan {plan.name} (steps: {names})"
            raise ConfigError(f"{where}: plan key {key!r} {why}")
        step = steps[matches[0]]
        allowed = [f.name for f in dataclasses.fields(step.params)]
        if param not in allowed:
            raise ConfigError(f"{where}: unknown plan key {key!r}: {step.op} has no parameter {param!r} (its "
                              f"parameters: {', '.join(allowed)})")
        steps[matches[0]] = dataclasses.replace(step, params=dataclasses.replace(step.params, **{param: value}))
    described = ", ".join(f"{k}={v}" for k, v in overrides.items())
    return dataclasses.replace(plan, name=f"{plan.name} with {described}", steps=tuple(steps))


def _arm(config: StudyConfig, arm: Arm, seed: SeedPlan, shared: TrainPlan, workdir: Path,
         hashes: dict[str, str]) -> ArmPlan:
    from growth.grow import read_config_file
    from growth.plan import load_plan, preserving_steps
    from training.throughput import flops_per_token

    folder = workdir / "arms" / arm.name
    where = f"arm {arm.name!r}"

    def model(label: str, what: str, *path: str) -> Model:
        return Model(label, f"{config.name}-{arm.name}-{what}", folder.joinpath(*path))

    grow = None
    if arm.start in ("grown", "scratch"):  # scratch: the architecture the plan grows, from random init
        name = arm.plan or config.grow.plan
        plan = apply_overrides(load_plan(config.resolve(name) or name), arm.overrides, where)
        grow = dataclasses.replace(plan_grow(config.grow, plan, seed, model), stage=None, stage_plan=None)
        start = grow.model if arm.start == "grown" else model("start", "scratch", "scratch")
        arch, parameters = grow.growth.final.config, grow.growth.final.num_parameters
    elif arm.start == "seed":
        start, arch = seed.model, seed.config
        parameters = _parameters(seed.config)
    else:
        path = Path(config.resolve(arm.checkpoint) or arm.checkpoint).absolute()
        if not (path / "config.json").is_file():
            raise ConfigError(f"{where}: checkpoint {path} is not on this machine (no config.json)")
        start, arch = Model("start", f"{config.name}-{arm.name}-checkpoint", path), read_config_file(path)
        parameters = _parameters(arch)
    overrides = _shared_overrides(shared.total, Path(shared.config.data.prepared), shared.config.data.validation.every)
    train = plan_train(config.train, config.resolve, start, folder / "train", f"{config.name}-{arm.name}",
                       {**arm.train, **overrides})
    if _data_settings(train.config) != _data_settings(shared.config) or train.total != shared.total:
        raise ConfigError(f"{where}: its train settings change the data stream or the budget")
    preserving = arm.start == "seed" or (arm.start == "grown" and preserving_steps(grow.plan) == len(grow.plan.steps))
    arm_hash = digest(hashes["seed"], hashes["data"], dataclasses.asdict(config.grow),
                      dataclasses.asdict(config.train), dataclasses.asdict(arm))
    return ArmPlan(arm.name, arm, start, arch, parameters, grow, train,
                   flops_per_token(arch, shared.config.seq_len), preserving, arm_hash)


def _parameters(config: dict[str, Any]) -> int:
    """Parameters of a model of `config` (tied weights once), counted on the meta device: no weights."""
    from growth.accounting import meta_tensors

    return sum(math.prod(shape) for shape, _ in meta_tensors(config).values())


def _check_tokenizers(arms: list[ArmPlan], seed: SeedPlan) -> None:
    """Every arm's model must read the seed's tokens: the same vocabulary size, and for a checkpoint made elsewhere
    the same tokenizer (when the seed's files are here to compare)."""
    vocab = seed.config.get("vocab_size")
    for arm in arms:
        theirs = arm.config.get("vocab_size")
        if theirs != vocab:
            raise ConfigError(f"arm {arm.name!r} cannot share the seed's tokenizer: its model has a vocabulary of "
                              f"{theirs} tokens, the seed's {vocab}")
        if arm.spec.start == "checkpoint" and (seed.model.path / "config.json").is_file():
            mine, other = _tokenizer_hash(seed.model.path), _tokenizer_hash(arm.start.path)
            if mine != other:
                raise ConfigError(f"arm {arm.name!r} cannot share the seed's tokenizer: {arm.start.path} has another "
                                  f"tokenizer (sha256 {other[:12]}) than the seed's (sha256 {mine[:12]})")


def _tokenizer_hash(path: Path) -> str:
    from transformers import AutoTokenizer

    from training.prepared import tokenizer_identity

    return tokenizer_identity(AutoTokenizer.from_pretrained(str(path)))["sha256"]


def where_it_runs(plan: StudyPlan, index: int, count: int) -> str:
    """How arm number `index` of the study trains, and on which shard of `count`."""
    launcher = " ".join(["torchrun", *plan.config.train.torchrun]) if plan.config.train.torchrun else \
        "in the study's process"
    return launcher + (f", shard {index % count}/{count}" if count > 1 else "")


def torchrun_gpus(args: list[str]) -> int:
    """Processes a torchrun command line starts: nnodes x nproc-per-node (1 when they are not given)."""
    found = {"nnodes": 1, "nproc": 1}
    for i, arg in enumerate(args):
        key, _, value = arg.partition("=")
        name = {"--nnodes": "nnodes", "--nproc-per-node": "nproc", "--nproc_per_node": "nproc"}.get(key)
        value = value or (args[i + 1] if i + 1 < len(args) else "")
        if name and value.split(":")[-1].isdigit():
            found[name] = int(value.split(":")[-1])
    return found["nnodes"] * found["nproc"]


def describe(plan: StudyPlan, shards: int = 1) -> list[str]:
    """The plan as `--dry-run` prints it: the seed, the shared data and budget, one line per arm (parameters, tokens,
    FLOPs, where it trains), the evaluation and the comparisons."""
    from growth.plan import PLANS
    from results.leaderboard import format_tokens
    from training.throughput import H100_BF16_PEAK, PLANNED_MFU

    config, tc = plan.config, plan.prepare
    lines = [f"study {config.name}: {config.description}".rstrip(": ")]
    lines.append(f"seed: tiny fixture {config.seed.fixture}" if plan.seed.fixture is not None
                 else f"seed: {config.seed.path}")
    if plan.pretrain is not None:
        pre = plan.pretrain
        lines.append(f"  trained first ({config.seed.train.config}): {pre.total:,} steps x "
                     f"{pre.config.tokens_per_step:,} tokens = {pre.total * pre.config.tokens_per_step:,} tokens "
                     f"(data seed {pre.config.data.seed}) -> {plan.trained_seed.name}")
    lines.append(f"data: {plan.data} (prepared once from {', '.join(tc.data.mixtures)}, data seed {tc.data.seed}); "
                 f"every arm: seq_len {tc.seq_len} x global batch {tc.global_batch} = {tc.tokens_per_step:,} "
                 f"tokens/step, {plan.steps:,} steps = {plan.tokens:,} tokens; held-out loss every "
                 f"{tc.data.validation.every} steps on {tc.data.validation.sequences} sequences per source")
    base = config.grow.plan if config.grow.plan in PLANS.names() else Path(config.grow.plan).name
    lines.append(f"arms ({len(plan.arms)}; growth plan {base}; FLOPs = 6N + attention per token x tokens):")
    gpus = torchrun_gpus(config.train.torchrun) if config.train.torchrun else 0
    names, starts = max(len(a.name) for a in plan.arms), max(len(_start(a)) for a in plan.arms)
    digits = max(len(f"{a.parameters:,}") for a in plan.arms)
    for i, arm in enumerate(plan.arms):
        hours = arm.flops / (H100_BF16_PEAK * PLANNED_MFU) / 3600
        lines.append(f"  {arm.name:<{names}}  {_start(arm):<{starts}}  {arm.parameters:>{digits},} params  "
                     f"{format_tokens(arm.tokens)} tokens  {arm.flops:.3g} FLOPs  {where_it_runs(plan, i, shards)}"
                     + (f", ~{hours:,.1f} H100-h = {hours / gpus:,.1f} h on {gpus}" if gpus else "")
                     + (f"  [{changes(arm)}]" if changes(arm) else ""))
    ev = plan.eval
    jobs = sum(len(ev.models(a)) for a in plan.arms) * len(ev.benchmarks)
    lines.append(f"eval ({ev.suite_key}, backend {ev.options.backend or 'vllm if importable, else hf'}, limit "
                 f"{ev.options.limit or 'none'}): {len(ev.benchmarks)} benchmarks x "
                 f"{sum(len(ev.models(a)) for a in plan.arms)} models (every arm's checkpoints"
                 f"{' and start' if ev.start_models else ''}) = {jobs} eval jobs, "
                 + ("Ray tasks" if ev.distribution.executor == "ray" else
                    f"{len(ev.groups)} local workers" if ev.groups else "in the study's process"))
    tests = len(plan.pairs) * (len(ev.benchmarks) + (len(ev.benchmarks) > 1))
    lines.append(f"compare: {len(plan.pairs)} pairs (final checkpoints; against {', '.join(config.compare.against)})"
                 f" x {len(ev.benchmarks) + (len(ev.benchmarks) > 1)} tests = {tests} tests, "
                 f"{config.compare.adjust} at alpha {config.compare.alpha:g}; tokens-to-target against "
                 f"{config.target}'s final held-out loss")
    if gpus:
        lines.append(f"  H100-h: the arm's FLOPs at {PLANNED_MFU:.0%} MFU of an H100's {H100_BF16_PEAK / 1e12:,.0f} "
                     "TFLOP/s (bf16 dense), the planner's GPU (training/throughput.py)")
    return lines


def _start(arm: ArmPlan) -> str:
    """How the arm starts, in a few words."""
    kind = {"grown": "grown", "scratch": "scratch (random init)", "seed": "the seed, no growth",
            "checkpoint": f"checkpoint {arm.start.path.name}"}[arm.spec.start]
    return f"{kind}, {arm.config.get('num_hidden_layers')} layers"


def changes(arm: ArmPlan) -> str:
    """What the arm changes against the study's plan and training, as key=value pairs ('' for none)."""
    items = [("plan", arm.spec.plan)] if arm.spec.plan else []
    return ", ".join(f"{k}={_value(v)}" for k, v in items + list(arm.spec.overrides.items()) + _dotted(arm.spec.train))


def _value(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _dotted(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        out += _dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]
    return out
