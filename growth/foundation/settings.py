"""Settings that every command shares, resolved once: flag, then environment variable, then default."""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV = "GROWBENCH_DB"
DATA_ENV = "GROWBENCH_DATA_DIR"
DEFAULT_DB = Path("runs") / "growbench.duckdb"


def db_path(flag: str | Path | None = None) -> Path:
    """The DuckDB file in effect: --db, else $GROWBENCH_DB, else runs/growbench.duckdb (relative to the cwd)."""
    return Path(flag or os.environ.get(DB_ENV) or DEFAULT_DB)


def data_dir(flag: str | Path | None = None) -> Path | None:
    """The local benchmark mirror in effect: --data-dir, else $GROWBENCH_DATA_DIR, else None (use the hub)."""
    value = flag or os.environ.get(DATA_ENV)
    return Path(value) if value else None
