"""Settings that every command shares, resolved once: flag, then environment variable, then default; and the one way
growbench changes the environment, for a block only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from growth.foundation.errors import ConfigError

DB_ENV = "GROWBENCH_DB"
DATA_ENV = "GROWBENCH_DATA_DIR"
DEFAULT_DB = Path("runs") / "growbench.duckdb"


def db_path(flag: str | Path | None = None) -> Path:
    """The DuckDB file in effect: --db, else $GROWBENCH_DB, else runs/growbench.duckdb (relative to the cwd)."""
    return Path(flag or os.environ.get(DB_ENV) or DEFAULT_DB)


def data_dir(flag: str | Path | None = None, *, check: bool = True) -> Path | None:
    """The local benchmark mirror in effect: --data-dir, else $GROWBENCH_DATA_DIR, else None (use the hub). With
    `check`, one that is not a folder is refused before anything runs (every benchmark would be unavailable)."""
    value = flag or os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value)
    if check and not path.is_dir():
        source = "--data-dir" if flag else f"${DATA_ENV}"
        raise ConfigError(f"{source} {path} is not a folder; give the benchmark mirror's folder (or leave it out "
                          "to load benchmarks from the Hugging Face hub)")
    return path


@contextmanager
def scoped_environ(**updates: str) -> Iterator[None]:
    """Set environment variables for the duration of a block only, restoring what was there (or its absence).

    Variables the user already set win (`setdefault` semantics), so a caller's explicit choice is never overridden.
    """
    saved = {k: os.environ.get(k) for k in updates}
    for key, value in updates.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


SANDBOX_ENV = "GROWBENCH_SANDBOX"
SANDBOX_MODES = ("strict", "weak")


def sandbox_mode() -> str:
    """How the code sandbox treats a missing layer: $GROWBENCH_SANDBOX, "strict" (refuse, the default) or "weak" (run)."""
    mode = os.environ.get(SANDBOX_ENV) or "strict"
    if mode not in SANDBOX_MODES:
        raise ConfigError(f"{SANDBOX_ENV}={mode!r} is not one of {', '.join(SANDBOX_MODES)}")
    return mode
