"""`growbench data prepare` (tokenize a train config's sources once, into Megatron indexed datasets) and
`growbench data inspect` (what a prepared directory or a Megatron dataset holds, with a decoded sample).

    growbench data prepare --config training/configs/openseek-mid-v1.yaml --out /data/openseek-tokens
    growbench data inspect /data/openseek-tokens --source stack-edu-Python
"""

from __future__ import annotations

from pathlib import Path

import typer

from suite.cli.console import console
from suite.cli.library_log import library_output

data_app = typer.Typer(no_args_is_help=True, help="Prepare token data for training and look inside it.")


def _tokens(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def prepare(config: str = typer.Option(..., "--config", help="Train config whose mixtures name the sources (its model "
                                       "gives the tokenizer)."),
            out: Path | None = typer.Option(None, "--out", help="Output directory (a killed run resumes into it; "
                                            "default: the config's data.prepared)."),
            workers: int | None = typer.Option(None, "--workers", help="Tokenizer processes (default: all cores)."),
            sources: str | None = typer.Option(None, "--sources", help="Only these sources (comma-separated)."),
            shard_size: str = typer.Option("256MiB", "--shard-size", help="Input bytes per output shard."),
            model: str | None = typer.Option(None, help="Override the config's model (whose tokenizer is used).")
            ) -> None:
    """Tokenize every source of the config's mixtures (EOS after each document) into DIR/<source>/shard-*.bin/.idx
    and DIR/manifest.json; training reads it with `data.prepared: DIR`."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from growth.foundation.errors import ConfigError
    from growth.foundation.units import parse_bytes
    from training.config import load_config
    from training.prepare import prepare as run_prepare

    cfg = load_config(config, {"model": model})
    if out is None and not cfg.data.prepared:
        raise ConfigError("give --out DIR (or set data.prepared in the config, where training will read it)")
    out = out or cfg.path(cfg.data.prepared)
    only = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    columns = (TextColumn("tokenizing"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with library_output("data prepare") as term, \
            Progress(*columns, console=Console(file=term.out), redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task("prepare", total=None)
        summary = run_prepare(cfg, out, workers, only, parse_bytes(shard_size),
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    table = Table(title=f"{summary.out}: {_tokens(summary.tokens)} tokens, {summary.units} shards "
                        f"({summary.skipped} kept from an earlier run), {summary.workers} workers, "
                        f"{summary.seconds:.1f} s")
    for column in ("source", "documents", "tokens", "card's dataset", "prepared / card", "mixture draws", "epochs"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for s in summary.sources:
        card = s.dataset_tokens_b * 1e9 if s.dataset_tokens_b else None
        table.add_row(s.name, f"{s.documents:,}", _tokens(s.tokens), _tokens(card) if card else "-",
                      f"{s.tokens / card:.1%}" if card else "-", _tokens(s.drawn_tokens), f"{s.epochs:.2f}")
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"train from it with `data: {{prepared: {summary.out}}}` in the train config", markup=False,
                  highlight=False, soft_wrap=True)


def inspect(path: Path = typer.Argument(..., help="A prepared directory, a Megatron PREFIX, or a folder of them."),
            source: str | None = typer.Option(None, "--source", help="Decode a sample of this source only."),
            document: int = typer.Option(0, "--document", help="Which document to decode (numbered across shards)."),
            tokens: int = typer.Option(64, "--tokens", help="How many of its tokens to decode."),
            tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer to decode with (default: the "
                                                 "one the manifest names).")) -> None:
    """Print the sources (documents, tokens, shards) and decode the start of one document of each."""
    from rich.table import Table

    from growth.foundation.errors import ConfigError
    from training.prepared import describe
    from training.prepared import document as read_document

    info = describe(path)
    if source is not None and source not in info["sources"]:
        raise ConfigError(f"--source {source} is not in {path} (it has: {', '.join(info['sources'])})")
    tok = info.get("tokenizer") or {}
    table = Table(title=f"{path}: {len(info['sources'])} source(s), tokens {info['dtype']}"
                        + (f", tokenizer {tok['name_or_path']} ({tok['vocab_size']:,}, sha256 {tok['sha256'][:12]})"
                           if tok else ""))
    for column in ("source", "documents", "tokens", "shards", "bytes"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, entry in info["sources"].items():
        size = sum(s["bin"] + s["idx"] for s in entry["shards"])
        table.add_row(name, f"{entry['documents']:,}", f"{entry['tokens']:,}", str(len(entry["shards"])),
                      f"{size / 2**20:,.1f} MiB")
    console.print(table)
    decoder = None
    name_or_path = tokenizer or tok.get("name_or_path")
    if name_or_path:
        try:
            with library_output("data inspect"):
                from transformers import AutoTokenizer

                decoder = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError):
            console.print(f"(cannot load tokenizer {name_or_path}; showing token ids; pass --tokenizer)",
                          markup=False, highlight=False)
    for name, entry in info["sources"].items():
        if source is not None and name != source:
            continue
        ids = read_document(entry["prefixes"], document)[:tokens].tolist()
        text = decoder.decode(ids) if decoder else " ".join(map(str, ids))
        console.print(f"\n{name}, document {document}, first {len(ids)} tokens:", style="bold", markup=False,
                      highlight=False)
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    data_app.command("prepare")(prepare)
    data_app.command("inspect")(inspect)
    app.add_typer(data_app, name="data")
