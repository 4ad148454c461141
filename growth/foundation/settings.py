"""Settings that every command shares, resolved once: flag, then environment variable, then default."""

from __future__ import annotations

import os
from pathlib import Path

from growth.foundation.errors import ConfigError

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


SANDBOX_ENV = "GROWBENCH_SANDBOX"
SANDBOX_MODES = ("strict", "weak")


def sandbox_mode() -> str:
    """How the code sandbox treats a missing layer: $GROWBENCH_SANDBOX, "strict" (refuse, the default) or "weak" (run)."""
    mode = os.environ.get(SANDBOX_ENV) or "strict"
    if mode not in SANDBOX_MODES:
        raise ConfigError(f"{SANDBOX_ENV}={mode!r} is not one of {', '.join(SANDBOX_MODES)}")
    return mode
