"""The DuckDB store every command reads and writes: models with their lineage, eval runs, scores and samples."""

from suite.store.db import Store, StoreError

__all__ = ["Store", "StoreError"]
