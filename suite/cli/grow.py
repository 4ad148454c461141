"""`growbench grow`: apply a growth plan to a checkpoint, or account for one without weights (--dry-run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from growth.foundation.atomic import write_json
from growth.foundation.errors import ConfigError
from suite.cli import options
from suite.cli.console import console
from suite.cli.library_log import library_output


def _count_line(counts: list[tuple[str, int]]) -> str:
    numbers = " -> ".join(f"{n:,}" for _, n in counts)
    return f"parameters: {numbers}  ({' -> '.join(label for label, _ in counts)})"


def _print_plan(grown, show_ops: bool) -> None:
    arch = grown.source.arch
    console.print(f"plan {grown.plan.name} (seed {grown.seed}) on {arch.model_type}, "
                  f"{grown.source.num_layers} layers", markup=False, highlight=False)
    for step in grown.steps:
        params = " ".join(f"{k}={v}" for k, v in vars(step.config.params).items() if v is not None)
        console.print(f"  step {step.index + 1} {step.config.op:<6} {params:<60} "
                      f"{step.before.num_parameters:>15,} -> {step.after.num_parameters:>15,}",
                      markup=False, highlight=False, soft_wrap=True)
    if show_ops:
        for line in grown.describe_ops():
            console.print("  " + line, markup=False, highlight=False, soft_wrap=True)
    console.print(_count_line(grown.stage_counts()), markup=False, highlight=False, soft_wrap=True)


def _print_checks(checks: list[dict]) -> bool:
    ok = True
    for c in checks:
        claim = "preserving" if c["preserving"] else "changes function"
        status = "ok" if c["ok"] else "FAILED"
        ok &= c["ok"]
        console.print(f"  verify step {c['step']} {c['op']:<6} {claim:<16} max-abs {c['max_abs']:.3e} "
                      f"relative {c['relative']:.3e} {status}", markup=False, highlight=False, soft_wrap=True)
    return ok


def grow(src: Optional[Path] = typer.Argument(None, help="Source checkpoint directory."),
         out: Optional[Path] = typer.Argument(None, help="Output checkpoint directory."),
         plan: str = typer.Option(..., help="Shipped plan name (e.g. openseek-mid-v1) or a plan YAML file."),
         seed: Optional[int] = typer.Option(None, help="Override the plan's seed."),
         dtype: Optional[str] = typer.Option(None, help="Output dtype (float32, bfloat16, float16); "
                                             "default: the source's."),
         verify: bool = typer.Option(False, help="Compare logits before/after every step on fixed prompts."),
         dry_run: bool = typer.Option(False, "--dry-run", help="Plan and count parameters; read no weights."),
         config: Optional[Path] = typer.Option(None, help="With --dry-run: a config.json (or its folder) "
                                              "instead of SRC."),
         write_config: Optional[Path] = typer.Option(None, "--write-config", help="With --dry-run: also write the "
                                                     "grown config.json here, for `growbench train --plan-memory "
                                                     "--model-config FILE`."),
         show_ops: bool = typer.Option(False, help="Print every per-tensor operation of the plan."),
         force: bool = options.FORCE) -> None:
    """Grow a checkpoint with a plan (width, untie, depth) and write growth.json beside the weights."""
    # Growing allocates gigabytes of short-lived tensors; huge pages cut the page-fault time (read at torch import).
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    from growth.grow import grow as run_grow
    from growth.grow import measured_snr, plan_source

    if dry_run:
        grown = plan_source(src, config, plan, seed=seed)
        _print_plan(grown, show_ops)
        console.print("grown config:", markup=False)
        console.print(json.dumps(grown.final.config, indent=2, sort_keys=True), markup=False, highlight=False,
                      soft_wrap=True)
        if write_config is not None:
            console.print(f"wrote {write_json(write_config, grown.final.config)}", markup=False, highlight=False,
                          soft_wrap=True)
        return
    if config is not None:
        raise ConfigError("--config is only for --dry-run; a real grow reads SRC/config.json")
    if write_config is not None:
        raise ConfigError("--write-config is only for --dry-run; a real grow writes OUT/config.json")
    if src is None or out is None:
        raise ConfigError("grow needs SRC and OUT (or --dry-run --config CONFIG_JSON)")
    with library_output("grow") as term, term.progress() as bar:
        task = bar.add_task("growing", total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=name)

        result = run_grow(src, out, plan, seed=seed, dtype=dtype, verify=verify, force=force,
                          progress=progress)
    _print_plan(result.plan, show_ops)
    snr = measured_snr(result.lineage)
    if snr:
        console.print(snr, markup=False, highlight=False)
    extra = [result.lineage["verify_output"]] if "verify_output" in result.lineage else []
    ok = _print_checks([s["verify"] for s in result.lineage["steps"]] + extra) if verify else True
    console.print(f"wrote {result.path} ({result.lineage['num_parameters']:,} parameters)", markup=False,
                  highlight=False, soft_wrap=True)
    if not ok:
        console.print("a function-preserving step changed the logits beyond tolerance", markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(grow)
