"""Run a study plan (suite/study/plan.py): the seed, the shared data, every arm as an independent resumable job, the
sweep of the arms' checkpoints, the comparisons and the page.

    growbench study --config tiny                              # everything, in sequence, on this machine
    growbench study --config FILE --setup                      # the seed and the data only (before shards)
    growbench study --config FILE --shard 3/8 --db shard-3.duckdb   # arms 3, 11, ... (one task of a job array)
    growbench db merge study.duckdb shard-*.duckdb && growbench study --config FILE --db study.duckdb   # the page

Like the pipeline (suite/pipeline/execute.py, whose markers and log capture it uses), every phase writes its outputs
under the work dir and then a marker `.steps/<phase>.json` with the hash of what it depends on; a phase whose marker
matches is skipped, so a killed study continues where it stopped: finished arms are not redone, the arm that was
training resumes from its last saved state, and the sweep skips evaluations the store already holds. An arm is two
phases, `<arm>.start` (its start model and held-out loss before training) and `<arm>.train`; it trains in this
process, or through torchrun when `train.torchrun` is set. An arm whose settings changed starts over (its folder is
stamped with its hash), never resuming a training state of other settings. Shards run their arms (the seed and data must be ready)
and sweep their checkpoints into their own store; the run that finds every arm trained compares them and writes the
page. What libraries print goes to `<workdir>/study.log`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from growth.foundation.atomic import write_json, write_text
from growth.foundation.config import as_dict
from growth.foundation.errors import ConfigError
from growth.foundation.terminal import capture
from suite.pipeline.execute import marker, read_marker, say
from suite.pipeline.steps import grow_model, log_jobs, make_seed, train_model
from suite.store import Store
from suite.study.plan import ArmPlan, StudyPlan, changes

Log = Callable[[str], None]


@dataclass
class StudyRun:
    """A study in progress: its plan, the store, the console and the log file."""

    plan: StudyPlan
    store: Store
    log: Log
    verbose: bool

    @property
    def log_file(self) -> Path:
        return self.plan.path("study.log")

    def phase(self, name: str, hash_: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run `work` unless the phase's marker matches `hash_`; library output goes to the log file."""
        done = read_marker(self.plan.workdir, name)
        if done is not None and done["hash"] == hash_:
            self.log(f"[{name}] done already, skipped")
            return done["outputs"]
        self.log(f"[{name}] running")
        t = time.perf_counter()
        try:
            with capture(self.log_file, verbose=self.verbose, header=f"[{name}]"):
                outputs = work()
        except BaseException:
            if not self.verbose:
                self.log(f"[{name}] failed; library output is in {self.log_file}")
            raise
        outputs["seconds"] = round(time.perf_counter() - t, 1)
        write_json(marker(self.plan.workdir, name), {"hash": hash_, "outputs": outputs})
        self.log(f"[{name}] finished in {outputs['seconds']} s")
        return outputs


def run_study(plan: StudyPlan, store: Store, *, shard: str | None = None, setup: bool = False, log: Log = say,
              verbose: bool = False) -> dict[str, Any]:
    """Run (or continue) the study: the seed and data, this shard's arms and their sweep, then (all arms trained,
    no shard) the comparisons and the page. Returns the report's outputs ({} when there is no page yet)."""
    from suite.eval.sweep import parse_shard

    index, count = parse_shard(shard)
    if setup and shard:
        raise ConfigError("give --setup or --shard, not both")
    run = StudyRun(plan, store, log, verbose)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    source = plan.config.source
    write_text(plan.path("study.yaml"), Path(source).read_text() if source else "")
    if not verbose:
        log(f"study {plan.config.name} in {plan.workdir}; library output goes to {run.log_file} (growbench -v shows "
            "it)")
    if shard:
        missing = [p for p in ("seed", "data") if (read_marker(plan.workdir, p) or {}).get("hash") != plan.hashes[p]]
        if missing:
            raise ConfigError(f"the study's {' and '.join(missing)} are not ready in {plan.workdir}; run `growbench "
                              f"study --config {source or plan.config.name} --setup` once before the shards")
    run.phase("seed", plan.hashes["seed"], lambda: _seed(run))
    run.phase("data", plan.hashes["data"], lambda: _data(run))
    if setup:
        return {}
    mine = plan.arms[index::count]
    for arm in mine:
        run.phase(f"{arm.name}.start", arm.hash, lambda arm=arm: _start(run, arm))
        run.phase(f"{arm.name}.train", arm.hash, lambda arm=arm: _train(run, arm))
    with capture(run.log_file, verbose=verbose, header="[sweep]"):
        _sweep(run, mine)
    if shard:
        log(f"shard {index}/{count} done: arms {', '.join(a.name for a in mine)}; once every shard is done, merge "
            "their stores (growbench db merge) and run the study without --shard for the page")
        return {}
    with capture(run.log_file, verbose=verbose, header="[report]"):
        return report(run)


def owned(folder: Path, hash_: str) -> None:
    """Make `folder` belong to the phase of `hash_`: what an earlier run with other settings left there (a training
    state to resume, above all) is removed; what an interrupted run of the same settings left is kept."""
    stamp = folder / ".study-hash"
    if folder.exists() and (not stamp.exists() or stamp.read_text() != hash_):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(stamp, hash_)


def _seed(run: StudyRun) -> dict[str, Any]:
    plan = run.plan
    outputs = make_seed(plan.seed, run.store)
    if plan.pretrain is not None:
        owned(plan.pretrain.run_dir, plan.hashes["seed"])
        outputs["train"] = train_model(plan.pretrain, run.log, "[seed]")
    outputs["trained"] = str(plan.trained_seed.path)
    return outputs


def _data(run: StudyRun) -> dict[str, Any]:
    from training.prepare import prepare

    summary = prepare(run.plan.prepare, run.plan.data, workers=run.plan.config.data.workers)
    run.log(f"  {summary.tokens:,} tokens of {len(summary.sources)} sources in {summary.out}")
    return {"out": str(summary.out), "tokens": summary.tokens, "sources": [s.name for s in summary.sources]}


def _start(run: StudyRun, arm: ArmPlan) -> dict[str, Any]:
    """The arm's start model (grown, drawn at random, or the seed) and its held-out loss before any step."""
    from growth.fixture import random_init
    from training.trainer import held_out_at_start

    plan, start = run.plan, arm.spec.start
    owned(plan.path("arms", arm.name), arm.hash)
    if start == "grown":
        grow_model(arm.grow, plan.trained_seed.path, run.store, run.log)
    elif start == "scratch":
        random_init(arm.start.path, arm.config, plan.trained_seed.path, seed=plan.config.grow.seed or 0, force=True)
        run.store.register_model(arm.start.path, kind="scratch", name=arm.start.name)
    elif start == "checkpoint":
        run.store.register_model(arm.start.path, name=arm.start.name)
    held_out = held_out_at_start(arm.train.config)
    run.log(f"  held-out loss before training {sum(held_out.values()) / len(held_out):.4f}")
    return {"path": str(arm.start.path), "held_out": held_out}


def _train(run: StudyRun, arm: ArmPlan) -> dict[str, Any]:
    torchrun = run.plan.config.train.torchrun
    if not torchrun:
        return train_model(arm.train, run.log, f"[{arm.name}]")
    config = arm.train.run_dir.parent / "train.yaml"
    write_text(config, yaml.safe_dump(as_dict(arm.train.config), sort_keys=False))
    state = arm.train.run_dir / "state"
    resume = ["--resume"] if state.is_dir() and any(state.iterdir()) else []
    command = [sys.executable, "-m", "torch.distributed.run", *torchrun, "-m", "suite.cli", "train", "--config",
               str(config), *resume]
    run.log(f"  {' '.join(['torchrun', *torchrun])} ... train --config {config}{' --resume' if resume else ''}")
    proc = subprocess.run(command)
    if proc.returncode:
        raise ConfigError(f"arm {arm.name}: torchrun training exited with code {proc.returncode} (its output is in "
                          f"{run.log_file})")
    return {"run_dir": str(arm.train.run_dir), "checkpoints": [str(m.path) for m in arm.train.checkpoints]}


def _sweep(run: StudyRun, arms: list[ArmPlan]) -> None:
    from suite.eval.sweep import sweep

    ev = run.plan.eval
    models = [str(m.path) for arm in arms for m in ev.models(arm)]
    if not models:
        return
    run.log("[sweep] running")
    report = sweep(models, ev.options, store=run.store, distribution=ev.distribution)
    log_jobs(run.log, report, ev.suite_key)


def report(run: StudyRun) -> dict[str, Any]:
    """Compare the arms, write the page; returns its path and the lines the console shows."""
    from results.compare import compare_family
    from results.leaderboard import build_leaderboard
    from results.leaderboard_format import to_html
    from results.study_report import efficiency_lines, start_checks, verdict_lines, write_study_page

    plan = run.plan
    unfinished = [a.name for a in plan.arms
                  if (read_marker(plan.workdir, f"{a.name}.train") or {}).get("hash") != a.hash]
    if unfinished:
        raise ConfigError(f"arms {', '.join(unfinished)} have not finished training in {plan.workdir}; run their "
                          "shards first")
    run.log("[report] running")
    page = study_page(run)
    reports = compare_family(run.store, [(plan.arm(a).final.name, plan.arm(b).final.name) for a, b in plan.pairs],
                             suite=plan.eval.suite_key, alpha=plan.config.compare.alpha,
                             adjust=plan.config.compare.adjust)
    page.comparisons = reports
    board = build_leaderboard(run.store, models=[m.name for a in plan.arms for m in plan.eval.models(a)],
                              suite=plan.eval.suite_key, marks="significance")
    page.board = to_html(board)
    out = write_study_page(page, plan.report)
    lines = [*efficiency_lines(page), *start_checks(page), *verdict_lines(page)]
    write_json(plan.path("report", "study.json"), {"lines": lines, "page": str(out)})
    return {"page": str(out), "lines": lines}


def _step(step: Any) -> str:
    """A growth step in one short line: `width: intermediate_size 512, snr_db 10, noise hypercloning`."""
    values = {k: v for k, v in step.to_dict().items() if k not in ("op", "stage") and v is not None}
    return step.op + (": " + ", ".join(f"{k} {v}" for k, v in values.items()) if values else "")


def study_page(run: StudyRun) -> Any:
    """The page's content from the arms' markers and metrics (the comparisons and benchmarks are added by
    `report`)."""
    from results.efficiency import LossCurve, efficiency
    from results.study_report import ArmSummary, StudyPage
    from training.metrics import read_metrics

    plan = run.plan
    summaries = []
    for arm in plan.arms:
        start = read_marker(plan.workdir, f"{arm.name}.start")["outputs"]["held_out"]
        curve = LossCurve.of(start, read_metrics(arm.train.run_dir))
        opt = arm.train.config.optimizer
        summaries.append(ArmSummary(
            arm.name, arm.spec.start, changes(arm), arm.spec.description, arm.parameters, arm.preserving,
            ([] if arm.spec.start != "scratch" else ["its architecture, from random init:"])
            + ([_step(s) for s in arm.grow.plan.steps] if arm.grow else []),
            f"{'Muon + AdamW' if opt.muon else 'AdamW'}, lr {opt.lr:g}", curve, arm.final.name,
            arm.config["vocab_size"]))
    goal, rows = efficiency({s.name: s.curve for s in summaries}, {a.name: a.flops_per_token for a in plan.arms},
                            plan.config.target)
    seed_arm = next((s for s in summaries if s.start == "seed"), None)
    tc = plan.prepare
    sources = len(summaries[0].curve.sources)
    held_out = (f"held-out loss: the mean over {sources} sources of each source's loss on its "
                f"{tc.data.validation.sequences} held-out sequences of {tc.seq_len} tokens (never trained on), "
                f"before training and every {tc.data.validation.every} steps")
    seed_tokens = plan.pretrain.total * plan.pretrain.config.tokens_per_step if plan.pretrain else 0
    facts = [("seed", plan.trained_seed.name), ("arms", str(len(plan.arms))),
             ("tokens per arm", f"{plan.tokens:,} ({plan.steps:,} steps of {tc.tokens_per_step:,})"),
             ("data", str(plan.data)), ("suite", plan.eval.suite_key), ("database", str(run.store.path.absolute()))]
    return StudyPage(plan.config.name, plan.config.description, summaries, plan.config.target, goal, rows,
                     seed_tokens, seed_arm.curve.start if seed_arm else None, held_out, [],
                     plan.config.compare.alpha, plan.config.compare.adjust, "", facts)
