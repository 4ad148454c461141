"""`growbench leaderboard`, `compare`, `regress` and `plot run|compare`: reports over stored results."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from results.reported_scores import CARD_REPORTED
from suite.cli import options
from suite.cli.console import console
from suite.eval.benchmarks import DEFAULT_SUITE

plot_app = typer.Typer(no_args_is_help=True, help="Plot stored results as PNG.")


def leaderboard(suite: str | None = typer.Option(None, "--suite", help="Suite whose runs count (eval_runs.suite); "
                                                  "default: the reported set's suite, else the only suite the "
                                                  "store (or the models named) holds runs in."),
                models: list[str] | None = typer.Option(None, "--models", "-m", help=(
                    "Measured model (id, name, path or name glob); repeat for more. Default: every evaluated "
                    "model, or none when --reported is given.")),
                reported: str | None = typer.Option(None, help="Reported set (results/reported/NAME.yaml or "
                                                                   "a path) shown beside the measured models."),
                pick: str = options.PICK,
                fmt: str = typer.Option("md", "--format", help="md, csv, html or latex."),
                marks: str = typer.Option("value", "--marks", help="value: best bold and second underlined by the "
                                          "value shown (the card's marks); significance: bold also every score "
                                          "within noise of the best (paired test, alpha 0.05), and so on."),
                out: Path | None = typer.Option(None, help="Write here (atomically) instead of stdout."),
                candidates: bool = typer.Option(False, "--include-candidates", help="Also show the scratch merges "
                                                "greedy-soup and search scored on their dev split (kind candidate)."),
                db: Path | None = options.DB) -> None:
    """Benchmarks as rows, models as columns in lineage order (seed, grown, checkpoints by step, merged), best bold
    and second underlined, as the model card prints it."""
    from growth.foundation.atomic import write_text
    from results.leaderboard import build_leaderboard
    from results.leaderboard_format import FORMATS, render
    from results.reported_scores import load_reported
    from suite.store import Store
    from suite.store.queries import choose_suite

    if fmt not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    reported_set = load_reported(reported) if reported else None
    store = Store(db) if models or reported_set is None else None
    suite = suite or (reported_set.suite if reported_set else None)
    if suite is None:
        suite = choose_suite(store, None, models=models or None) if store is not None else DEFAULT_SUITE
    text = render(build_leaderboard(store, reported=reported_set, models=models or None, suite=suite, pick=pick,
                                    marks=marks, candidates=candidates), fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        typer.echo(f"wrote {write_text(out, text)}")


def regress(model: str = typer.Option(..., help="The model under test (id, name or path)."),
            against: str = typer.Option(..., help="reported:NAME[:MODEL] (default model: the card's subject) "
                                                  "or model:NAME (another measured model)."),
            abs_tol: float = typer.Option(1.0, help="Always accept |delta| up to this many points (x100 scale)."),
            z: float = typer.Option(2.0, help="Also accept |delta| up to z x stderr."),
            benchmarks: list[str] | None = typer.Option(None, "--benchmark", "-b", help=(
                "Compare only these (repeat); each must have a score on both sides.")),
            allow_mismatch: bool = typer.Option(False, help="Compare even when shots, limit or metric differ."),
            suite: str | None = options.SUITE,
            pick: str = options.PICK,
            json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
            junit_out: Path | None = typer.Option(None, "--junit", help="Write JUnit XML for CI."),
            db: Path | None = options.DB) -> None:
    """Per benchmark delta, stderr and z; exit 0 when all pass, 1 on a regression, 2 on a usage/data error."""
    from rich.table import Table

    from growth.foundation.atomic import write_json, write_text
    from results.regress import regress as run_regress
    from results.regress import to_junit
    from suite.store import Store
    from suite.store.queries import choose_suite

    store = Store(db)
    report = run_regress(store, model, against, abs_tol=abs_tol, z=z, pick=pick,
                         suite=choose_suite(store, suite, models=[model]),
                         benchmarks=benchmarks or None, allow_mismatch=allow_mismatch)
    # the title on a line of its own: as a table title, rich would wrap it to the table's width
    console.print(f"{report.model} vs {report.against} (|delta| <= max({abs_tol:g}, {z:g} x stderr))",
                  markup=False, highlight=False, soft_wrap=True)
    table = Table()
    for name in ("benchmark", "measured", "reference", "delta", "stderr", "z", "threshold", "status",
                 "settings"):
        table.add_column(name, justify="left" if name in ("benchmark", "status", "settings") else "right")
    style = {"pass": "green", "fail": "bold red", "missing": "yellow"}
    for c in report.results:
        cells = [f"{v:.2f}" if v is not None else "—" for v in (c.measured, c.reference)]
        cells += [f"{c.delta:+.2f}" if c.delta is not None else "—"]
        cells += [f"{v:.2f}" if v is not None else "—" for v in (c.stderr, c.z, c.threshold)]
        table.add_row(c.benchmark, *cells, f"[{style[c.status]}]{c.status}[/]", c.settings)
    console.print(table)
    if report.mismatches:
        typer.echo(f"compared despite mismatched settings: {'; '.join(report.mismatches)}")
    if json_out:
        typer.echo(f"wrote {write_json(json_out, report.to_dict())}")
    if junit_out:
        typer.echo(f"wrote {write_text(junit_out, to_junit(report))}")
    failed = [f"{c.benchmark} ({c.delta:+.2f})" for c in report.results if c.status == "fail"]
    typer.echo(f"outside tolerance: {', '.join(failed)}" if failed else "all within tolerance")
    raise typer.Exit(1 if failed else 0)


def compare(model_a: str = typer.Argument(..., help="Model A (id, name or path)."),
            model_b: str = typer.Argument(..., help="Model B, the reference."),
            benchmarks: list[str] | None = options.BENCHMARKS,
            suite: str | None = typer.Option(None, "--suite", help="Suite whose runs count; default: the suite "
                                             "both models were evaluated in."),
            alpha: float = typer.Option(0.05, help="Significance level of the verdicts (0.001 to 0.5); the "
                                        "intervals are at 1 - alpha."),
            adjust: str = typer.Option("holm", "--adjust", help="How the verdicts of all benchmarks (and their "
                                       "average) are adjusted as one family: holm (family-wise error <= alpha), "
                                       "bh (false discovery rate <= alpha) or none."),
            pick: str = options.PICK,
            json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
            db: Path | None = options.DB) -> None:
    """Paired comparison over the documents both models scored: difference, interval, raw and adjusted p, verdict
    per benchmark and for their average."""
    from growth.foundation.atomic import write_json
    from results.compare import compare as run_compare
    from suite.eval.significance import level
    from suite.store import Store

    keys = options.benchmark_keys(benchmarks)
    report = run_compare(Store(db), model_a, model_b, benchmarks=keys or None, suite=suite, alpha=alpha,
                         adjust=adjust, pick=pick)
    typer.echo(f"{report.model_a} vs {report.model_b} in {report.suite}, paired over the documents both scored "
               f"(points; {level(alpha)} CI of the difference):")
    for line in report.lines():
        typer.echo("  " + line)
    if json_out:
        typer.echo(f"wrote {write_json(json_out, report.to_dict())}")


def plot_run(run: str = typer.Argument(..., help="Training run: its id (models.training_run) or its folder."),
             out: Path = typer.Option(..., help="PNG file to write."),
             benchmarks: list[str] | None = typer.Option(None, "--benchmark", "-b", help="Only these."),
             suite: str | None = options.SUITE,
             pick: str = options.PICK,
             db: Path | None = options.DB) -> None:
    """Each benchmark's score against step (tokens on top) with stderr bands; merged models marked."""
    from results.plots import plot_run as draw
    from suite.store import Store
    from suite.store.queries import choose_suite, training_run

    options.out_file(out, "--out", ".png")
    store = Store(db)
    run_id, _ = training_run(store, run)
    suite = choose_suite(store, suite, run=run_id)
    typer.echo(f"wrote {draw(store, run_id, out, suite=suite, pick=pick, benchmarks=benchmarks or None)}")


def plot_compare(model: str = typer.Argument(..., help="Measured model (id, name or path)."),
                 reported: str | None = typer.Option(None, help="Reported set beside it (default: the card's, "
                                                     f"{CARD_REPORTED}, unless --models is given)."),
                 models: list[str] | None = typer.Option(None, "--models", "-m", help="Other measured models "
                                                         "beside it (repeat)."),
                 out: Path = typer.Option(..., help="PNG file to write."),
                 suite: str | None = options.SUITE,
                 pick: str = options.PICK,
                 db: Path | None = options.DB) -> None:
    """Bars per benchmark: a reported set's models and other measured models next to the model."""
    from results.plots import plot_compare as draw
    from results.reported_scores import load_reported
    from suite.store import Store
    from suite.store.queries import choose_suite

    options.out_file(out, "--out", ".png")
    store = Store(db)
    reported_set = load_reported(reported or CARD_REPORTED) if reported or not models else None
    suite = choose_suite(store, suite, models=[model, *(models or [])], every=bool(models))
    typer.echo(f"wrote {draw(store, model, reported_set, out, others=models or [], suite=suite, pick=pick)}")


def register(app: typer.Typer) -> None:
    app.command()(leaderboard)
    app.command()(regress)
    app.command()(compare)
    plot_app.command("run")(plot_run)
    plot_app.command("compare")(plot_compare)
    app.add_typer(plot_app, name="plot")
