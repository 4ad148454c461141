"""The `growbench` command line: one typer app, one thin command per pipeline verb.

Each command module defines its commands as plain functions and lists them in `register(app)`; each command parses
its options (shared ones come from suite/cli/options.py, and a typed options object such as EvalOptions gets one
flag per field from it), calls one library function and prints a summary. Heavy
imports (torch, vLLM, DuckDB) happen inside command bodies so `growbench --help` stays instant. User mistakes raise
`GrowbenchError`: `main()` prints them on one line and exits with code 2.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import typer

from growth.foundation.errors import GrowbenchError
from suite.cli import (
    data,
    db,
    env,
    evaluate,
    grow,
    ingest,
    library_log,
    merge,
    pipeline,
    report,
    results,
    study,
    train,
)
from suite.cli.console import console, err_console

app = typer.Typer(name="growbench", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Evaluation-driven model growth: grow, train, evaluate, select, merge, report.")


def _version(value: bool) -> None:
    if value:
        console.print(f"growbench {version('growbench')}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context,
          show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                            help="Print the version and exit."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Show what libraries print (lm-eval, "
                                       "transformers, vLLM); by default the pipeline sends it to its log file.")
          ) -> None:
    """Evaluation-driven model growth."""
    ctx.obj = {"verbose": verbose}
    library_log.set_verbose(verbose)


for _module in (env, grow, train, data, evaluate, ingest, db, merge, results, report, pipeline, study):
    _module.register(app)


def _usage_error(e: Exception) -> bool:
    """Whether `e` is click's usage error: click's own, or the copy of click that newer typer versions carry."""
    import click

    return isinstance(e, (click.ClickException, getattr(typer, "TyperException", click.ClickException)))


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # non-standalone click returns a typer.Exit's code instead of raising
    except GrowbenchError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as e:  # click usage errors (a missing or malformed option) arrive here in non-standalone mode
        if not _usage_error(e):
            raise
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(f"error: {e.format_message()}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
