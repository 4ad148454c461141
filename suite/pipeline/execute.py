"""The user's main job as one resumable chain: seed -> grow -> train -> sweep -> select -> build -> evaluate -> report.

    growbench pipeline --config tiny                        # the embedded default, 2 CPUs, minutes
    growbench pipeline --config openseek-mid-v1 --dry-run   # the card's run, planned without weights

`run_pipeline` executes a plan (suite/pipeline/plan.py: the same object the dry run prints) step by step
(suite/pipeline/steps.py). Every step writes its outputs under one work dir and, once they are complete, a marker
`.steps/<step>.json` holding a hash of the config sections it depends on (chained through the steps before it) and
its outputs. A step whose marker matches is skipped, so a re-run after a crash continues where it stopped: training
resumes from its last complete state, the sweep skips finished eval jobs (the store keeps them), and half-written
outputs are never published.

The console gets one line per step (and a progress display with ETA while a long step runs on a terminal); what
lm-eval, transformers, vLLM and the rest print goes to `<workdir>/pipeline.log` (growth/foundation/terminal.py),
unless `verbose` (growbench -v). The last step writes the report page `<workdir>/report/report.html`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from growth.foundation.atomic import write_json, write_text
from growth.foundation.errors import ConfigError
from growth.foundation.terminal import capture, shown, terminal
from suite.pipeline.plan import STEPS, PipelinePlan
from suite.pipeline.steps import STEP_FUNCTIONS, Run
from suite.store import Store

# The config sections each step reads; a change in one redoes that step and every step after it.
DEPENDS = {"seed": ("seed",), "grow": ("grow",), "train": ("train",), "sweep": ("eval",), "select": ("select",),
           "build": (), "evaluate": (), "report": ("report",)}


def step_hashes(plan: PipelinePlan) -> dict[str, str]:
    """Each step's hash covers its own sections and, through the chain, the suite and every earlier step's."""
    hashes, previous = {}, plan.suite_key
    for step in plan.steps:
        previous = hashlib.sha256((previous + plan.config.section_hash(*DEPENDS[step])).encode()).hexdigest()[:16]
        hashes[step] = previous
    return hashes


def marker(workdir: Path, step: str) -> Path:
    return workdir / ".steps" / f"{step}.json"


def read_marker(workdir: Path, step: str) -> dict[str, Any] | None:
    """A completed step's record: its hash and its outputs (None: the step has not completed)."""
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


def run_pipeline(plan: PipelinePlan, store: Store, *, start: str | None = None, only: str | None = None,
                 log: Callable[[str], None] = say, verbose: bool = False) -> dict[str, dict[str, Any]]:
    """Run (or continue) the plan's steps; returns every step's outputs. `start`/`only` force those steps to rerun.
    Third-party output of each step goes to `<workdir>/pipeline.log` unless `verbose`."""
    selected = steps_to_run(start, only)
    forced = set(selected) if (start or only) else set()
    run = Run(plan, store, log)
    hashes = step_hashes(plan)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    source = plan.config.source
    write_text(plan.path("pipeline.yaml"), Path(source).read_text() if source else "")
    log_file = plan.path("pipeline.log")
    if not verbose:
        log(f"pipeline {plan.config.name} in {shown(plan.workdir)}; library output goes to {shown(log_file)} "
            "(growbench -v shows it)")
    for step in STEPS[: STEPS.index(selected[-1]) + 1]:
        done = read_marker(plan.workdir, step)
        fresh = done is not None and done["hash"] == hashes[step]
        if step not in selected and not fresh:
            raise ConfigError(f"step {step!r} has not completed in {plan.workdir} for this config; run the earlier "
                              f"steps first (e.g. --from {step})")
        if fresh and step not in forced:
            run.outputs[step] = done["outputs"]
            if step in selected:
                log(f"[{step}] done already, skipped")
            continue
        log(f"[{step}] running")
        t = time.perf_counter()
        try:
            with capture(log_file, verbose=verbose, header=f"[{step}]"):
                outputs = STEP_FUNCTIONS[step](run)
        except BaseException:
            if not verbose:
                log(f"[{step}] failed; library output of the step is in {shown(log_file)}")
            raise
        outputs["seconds"] = round(time.perf_counter() - t, 1)
        run.outputs[step] = outputs
        write_json(marker(plan.workdir, step), {"hash": hashes[step], "outputs": outputs})
        log(f"[{step}] finished in {outputs['seconds']} s")
    return run.outputs


def summary(outputs: dict[str, dict[str, Any]], store: Store) -> list[str]:
    """What the console shows after a run: the leaderboard's rows, what the numbers rest on, and where every output
    went (nothing when the report step did not run)."""
    report, lines = outputs.get("report"), []
    if not report:
        return lines
    table = [line for line in report["table"].splitlines() if line.startswith("|")]
    lines += [*table, "(notes under the table: in the leaderboard file below)"]
    lines += ["  " + line for line in report.get("precision", [])]
    if "growth_check" in report:
        lines.append("growth: " + report["growth_check"])
    if "final_vs_seed" in report:
        lines.append("did the merge help? the final model paired over the same documents with the seed, the best "
                     f"single checkpoint and each merge parent (points; details: {shown(report['evidence'])}):")
        lines += ["  " + line for line in report["final_vs_seed"]]
    lines += [f"database: {shown(store.path)}", f"final model: {shown(outputs['build']['path'])}"]
    plots = [shown(report[k]) for k in ("run_plot", "compare_plot") if k in report]
    lines.append(f"leaderboard: {shown(report['leaderboard'])}; plots: {', '.join(plots)}")
    if "regress" in report:
        lines.append(f"regress vs reported: {shown(report['regress']['json'])}")
    if "page" in report:
        lines.append(f"report: {shown(report['page'])}")
    return lines
