"""Which source each sequence of a stage comes from: Megatron's blending rule, and its index cached on disk.

The rule (megatron-core's `build_blending_indices`, used by its BlendedDataset): sequence i of a stage comes from the
source whose realised count lags its weight the most, weight x max(i, 1) - count, ties to the earlier source. It
is deterministic, needs no RNG state, and keeps every source's realised share within about one sequence of its
weight at every point of the run. The on-the-fly loader applies it one sequence at a time (`next_source`); for
prepared data the whole stage is computed once by megatron-core's own C++ helper and cached as Megatron caches it
(`dataset_index` int16 and `dataset_sample_index` int64 .npy files, 10 bytes per sequence: 1.7 GB for the card's
stage 1 of 166M sequences), memory-mapped by every rank, so finding step N's sources costs the same at any N.

The cache is keyed by what changes the index (the stage's source names, weights and number of sequences); a file
appears only once complete (temporary name, then rename; the description JSON last).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from growth.foundation.atomic import write_json
from growth.foundation.errors import BackendError


def next_source(weights: list[float], counts: list[int]) -> int:
    """Index of the source that supplies the next sequence, given each source's count so far (Megatron's rule)."""
    i = max(sum(counts), 1)
    best, best_error = 0, weights[0] * i - counts[0]
    for k in range(1, len(weights)):
        error = weights[k] * i - counts[k]
        if error > best_error:
            best, best_error = k, error
    return best


def normalized(weights: list[float]) -> list[float]:
    """Weights summing to 1, computed as megatron-core's `normalize` does (numpy's sum), so both paths agree bit for
    bit on every tie."""
    w = np.asarray(weights, dtype=np.float64)
    return (w / np.sum(w)).tolist()


def build_blend(weights: list[float], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(source of each sequence, that source's running count) for `size` sequences, by megatron-core's helper."""
    with warnings.catch_warnings():  # megatron-core warns that Transformer Engine and Apex, unused here, are absent
        warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex are not installed.*")
        try:  # ~5 s import; only when a stage's index is not cached yet
            from megatron.core.datasets import helpers
        except ImportError as e:
            raise BackendError(f"prepared data builds its blend index with megatron-core, which does not import "
                               f"({e}); pip install --no-deps megatron-core==0.16.1") from None

    dataset_index = np.zeros(size, dtype=np.int16)
    dataset_sample_index = np.zeros(size, dtype=np.int64)
    helpers.build_blending_indices(dataset_index, dataset_sample_index, np.asarray(normalized(weights), np.float64),
                                   len(weights), size, False)
    return dataset_index, dataset_sample_index


class StageBlend:
    """One stage's blend index, memory-mapped from the cache: `sources(a, b)` are the sources of sequences [a, b)
    and `positions(a, b)` each one's index among its source's sequences of the stage; `counts` the stage's totals."""

    def __init__(self, names: list[str], weights: list[float], size: int, cache: Path) -> None:
        self.names, self.size = names, size
        self.description = {"rule": "megatron-core build_blending_indices", "sources": names,
                            "weights": normalized(weights), "size": size}
        key = hashlib.sha256(json.dumps(self.description, sort_keys=True).encode()).hexdigest()[:20]
        self.files = {part: cache / f"{key}-blend-{part}" for part in
                      ("dataset_index.npy", "dataset_sample_index.npy", "description.json")}
        self.weights = weights

    def cached(self) -> bool:
        return self.files["description.json"].is_file()

    def build(self) -> None:
        """Compute the index and publish it in the cache (any process may; the result is the same bytes)."""
        dataset_index, dataset_sample_index = build_blend(self.weights, self.size)
        counts = np.bincount(dataset_index, minlength=len(self.names))
        cache = self.files["description.json"].parent
        cache.mkdir(parents=True, exist_ok=True)
        for part, array in (("dataset_index.npy", dataset_index), ("dataset_sample_index.npy", dataset_sample_index)):
            tmp = cache / f".{self.files[part].name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as f:
                np.save(f, array)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.files[part])
        write_json(self.files["description.json"], {**self.description, "counts": counts.tolist()})

    def open(self) -> StageBlend:
        record: dict[str, Any] = json.loads(self.files["description.json"].read_text())
        self.counts = np.asarray(record["counts"], dtype=np.int64)
        self._index = np.load(self.files["dataset_index.npy"], mmap_mode="r")
        self._position = np.load(self.files["dataset_sample_index.npy"], mmap_mode="r")
        return self

    def sources(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._index[start:stop], dtype=np.int64)

    def positions(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._position[start:stop])
