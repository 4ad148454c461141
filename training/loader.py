"""Where the training loop gets this rank's sequences of step N: prepared data (memory-mapped, per rank, O(1) resume,
prefetched) or the on-the-fly mixture (tokenized as it goes; the tiny default and hub streaming).

Step N's global batch is sequences [N x global_batch, (N + 1) x global_batch) of the run, in stage order; rank r of
W takes its contiguous share [r x global_batch / W, (r + 1) x global_batch / W) of it, so any world size sees the
same global batches as one process, and the loop splits its share into micro-batches.

Prepared data: sequence i of a stage comes from the source the stage's cached blend index names (training/blend.py),
as that source's sample number (its count in earlier stages plus its position in this one: a source used in both
stages continues where stage 1 left it), read from that source's windows (training/prepared.py). Each rank reads only
its own sequences, a background thread reads step N + 1 while step N trains, and the loader is a pure function of
the step: resuming at step 100,000 reads nothing that resuming at step 10 does not. Its state is a fingerprint of
everything the sample stream depends on, which a resume checks.

On the fly: every rank tokenizes the whole global batch and keeps its share (`training/data.py`), which a large run
cannot afford; `on_the_fly_note` says so when the planner is asked about one.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np
import torch

from growth.foundation.errors import ConfigError, DataError
from training.blend import StageBlend
from training.data import MixtureLoader
from training.prepared import (
    PreparedSource,
    check_tokenizer,
    check_vocabulary,
    read_manifest,
    source_shards,
)

ON_THE_FLY_TOKENS_PER_S = 0.33e6
"""Tokens per second one process packs on the fly: measured on the 2-core VM with the fixture's tokenizer (issue 20;
`python -m bench.data_loader` measures it again, 0.18 to 0.44M under varying load)."""


class Batches(Protocol):
    """What the training loop asks of a loader."""

    def batch(self, step: int) -> torch.Tensor:
        """This rank's sequences of step `step` (0-based), [global_batch / world, seq_len] int64."""

    def tokens_by_source(self, step: int) -> list[dict[str, int]]:
        """Tokens trained per stage and source once steps [0, step) are done."""

    def validation(self) -> dict[str, torch.Tensor]:
        """Each source's held-out sequences (none on the fly)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def stage_of(step: int, ends: list[int]) -> int:
    for i, end in enumerate(ends):
        if step < end:
            return i
    raise ValueError(f"step {step} is past the last stage (ends at {ends[-1]})")


class PreparedLoader:
    """Batches read from prepared data; see the module docstring."""

    def __init__(self, stages: list, sources: dict[str, PreparedSource], seq_len: int, global_batch: int,
                 ends: list[int], cache: Path, seed: int, rank: int = 0, world: int = 1,
                 barrier: Callable[[], None] | None = None) -> None:
        self.stages, self.sources, self.seq_len, self.global_batch = stages, sources, seq_len, global_batch
        self.ends, self.rank, self.world, self.seed = ends, rank, world, seed
        self.per_rank = global_batch // world
        starts = [0] + ends[:-1]
        self.blends = [StageBlend([s.name for s in st.sources], [s.weight for s in st.sources],
                                  (end - start) * global_batch, cache) for st, start, end in zip(stages, starts, ends)]
        missing = [b for b in self.blends if not b.cached()]
        if missing and rank == 0:
            for b in missing:
                b.build()
        if missing and barrier:
            barrier()
        for b in self.blends:
            if not b.cached():  # a cache folder that is not shared between nodes: this node builds its own
                b.build()
            b.open()
        self.offsets: list[np.ndarray] = []  # per stage, per source of the stage: samples drawn in earlier stages
        drawn: dict[str, int] = {}
        for st, b in zip(stages, self.blends):
            self.offsets.append(np.array([drawn.get(s.name, 0) for s in st.sources], dtype=np.int64))
            for s, c in zip(st.sources, b.counts):
                drawn[s.name] = drawn.get(s.name, 0) + int(c)
        self.drawn = drawn
        self.fingerprint = hashlib.sha256(json.dumps({
            "seq_len": seq_len, "global_batch": global_batch, "seed": seed,
            "blends": [b.description for b in self.blends],
            "sources": {name: s.identity() for name, s in sorted(sources.items())}}, sort_keys=True).encode()
        ).hexdigest()

    def _locate(self, step: int) -> tuple[int, int]:
        stage = stage_of(step, self.ends)
        start = self.ends[stage - 1] if stage else 0
        return stage, (step - start) * self.global_batch

    def batch(self, step: int) -> torch.Tensor:
        stage, first = self._locate(step)
        a = first + self.rank * self.per_rank
        blend, st = self.blends[stage], self.stages[stage]
        which = blend.sources(a, a + self.per_rank)
        sample = blend.positions(a, a + self.per_rank) + self.offsets[stage][which]
        out = np.empty((self.per_rank, self.seq_len), dtype=np.int64)
        for k in np.unique(which):
            at = np.flatnonzero(which == k)
            rows = out[at]
            self.sources[st.sources[k].name].samples(sample[at], rows)
            out[at] = rows
        return torch.from_numpy(out)

    def stage_counts(self, step: int) -> np.ndarray:
        """Sequences each source of the step's stage has supplied in that stage once step `step` is done: exact,
        from the blend index (a source's position at its last sequence so far, plus one), scanning back only as far
        as the rarest source's last appearance."""
        stage, first = self._locate(step)
        blend = self.blends[stage]
        end = first + self.global_batch
        counts = np.full(len(blend.names), -1, dtype=np.int64)
        chunk, stop = 1 << 12, end
        while stop > 0 and (counts < 0).any():
            start = max(0, stop - chunk)
            which, pos = blend.sources(start, stop)[::-1], blend.positions(start, stop)[::-1]
            ks, first_seen = np.unique(which, return_index=True)
            new = counts[ks] < 0
            counts[ks[new]] = pos[first_seen[new]] + 1
            stop, chunk = start, chunk * 2
        return np.maximum(counts, 0)

    def tokens_by_source(self, step: int) -> list[dict[str, int]]:
        out = [{s.name: 0 for s in st.sources} for st in self.stages]
        if step <= 0:
            return out
        current = stage_of(step - 1, self.ends)
        for i, (st, b) in enumerate(zip(self.stages, self.blends)):
            counts = b.counts if i < current else self.stage_counts(step - 1) if i == current else None
            if counts is not None:
                out[i] = {s.name: int(c) * self.seq_len for s, c in zip(st.sources, counts)}
        return out

    def validation(self) -> dict[str, torch.Tensor]:
        """Each source's held-out sequences (every rank gets all; validation splits them)."""
        return validation_sequences(self.sources)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "prepared", "fingerprint": self.fingerprint}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "prepared":
            raise DataError("the checkpoint was trained on the on-the-fly mixture; it cannot resume on prepared data "
                            "(start a new run from its HF export instead)")
        if state["fingerprint"] != self.fingerprint:
            raise DataError("the prepared data or the data settings (seq_len, global_batch, seed, mixture, validation "
                            "sequences) differ from the checkpoint's; resuming would not continue its sample stream")


class StreamingLoader:
    """The on-the-fly mixture as `Batches`: steps must be asked for in order (the streams are sequential)."""

    def __init__(self, mixture: MixtureLoader, ends: list[int], global_batch: int, rank: int, world: int) -> None:
        self.mixture, self.ends, self.global_batch = mixture, ends, global_batch
        self.per_rank, self.rank = global_batch // world, rank

    def batch(self, step: int) -> torch.Tensor:
        full = self.mixture.batch(stage_of(step, self.ends), self.global_batch)
        return full[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]

    def tokens_by_source(self, step: int) -> list[dict[str, int]]:
        return self.mixture.tokens_by_source()

    def validation(self) -> dict[str, torch.Tensor]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return self.mixture.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") == "prepared":
            raise DataError("the checkpoint was trained on prepared data; set data.prepared (or the sources' prepared "
                            "prefixes) as it was to resume it")
        self.mixture.load_state_dict(state)


class Prefetcher:
    """Reads step N + 1 in a background thread while step N trains (pinned on GPU, for a non-blocking copy)."""

    def __init__(self, loader: PreparedLoader, total: int, pin: bool = False) -> None:
        self.loader, self.total, self.pin = loader, total, pin
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self.pending: dict[int, Future] = {}

    def _read(self, step: int) -> torch.Tensor:
        batch = self.loader.batch(step)
        return batch.pin_memory() if self.pin else batch

    def batch(self, step: int) -> torch.Tensor:
        future = self.pending.pop(step, None)
        batch = future.result() if future is not None else self._read(step)
        if step + 1 < self.total:
            self.pending[step + 1] = self.pool.submit(self._read, step + 1)
        return batch

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def uses_prepared(stages: list, data: Any) -> bool:
    """Prepared data for the run: data.prepared is set, or every source names its own prefixes."""
    own = {s.name: bool(s.prepared) for st in stages for s in st.sources}
    if data.prepared or all(own.values()):
        return True
    if any(own.values()):
        raise ConfigError(f"sources {', '.join(sorted(k for k, v in own.items() if v))} list prepared data and "
                          f"{', '.join(sorted(k for k, v in own.items() if not v))} do not: set data.prepared to the "
                          f"directory `growbench data prepare` wrote for the rest, or prepare them all")
    return False


def open_sources(stages: list, data: Any, tokenizer: Any, seq_len: int) -> dict[str, PreparedSource]:
    """Every source of the run's stages, opened and checked: the manifest's tokenizer against the model's, each
    source's shards whole, data tokenized elsewhere within the model's vocabulary."""
    directory = manifest = None
    if data.prepared:
        directory = Path(data.prepared).expanduser()
        manifest = read_manifest(directory)
        check_tokenizer(manifest, tokenizer, directory)
    out: dict[str, PreparedSource] = {}
    for st in stages:
        for s in st.sources:
            if s.name in out:
                continue
            shards = source_shards(s.name, manifest, directory, s.prepared)
            out[s.name] = PreparedSource(s.name, shards, seq_len, data.validation.sequences
                                         if data.validation.every else 0, data.seed)
            if s.prepared:
                check_vocabulary(out[s.name], len(tokenizer))
    return out


def validation_sequences(sources: Mapping[str, PreparedSource]) -> dict[str, torch.Tensor]:
    """Each source's held-out sequences (sources that hold out none are left out)."""
    return {name: torch.from_numpy(s.validation()) for name, s in sources.items() if s.held_out}


def on_the_fly_note(tokens_per_step: int, world: int, gpu_step_s: float) -> str | None:
    """A line for the planner when the on-the-fly path would keep the GPUs waiting (> 2% of a step), else None."""
    data_s = tokens_per_step / ON_THE_FLY_TOKENS_PER_S
    if data_s <= 0.02 * gpu_step_s:
        return None
    return (f"data: on the fly, every one of the {world} ranks tokenizes all {tokens_per_step:,} tokens of a step, "
            f"~{data_s:.0f} s at {ON_THE_FLY_TOKENS_PER_S / 1e6:.2f}M tokens/s against a ~{gpu_step_s:.1f} s GPU step; "
            f"prepare the data once (`growbench data prepare`) and set data.prepared")


def build_loader(stages: list, config: Any, tokenizer: Any, ends: list[int], run: Path, rank: int, world: int,
                 barrier: Callable[[], None] | None, sources: Mapping[str, PreparedSource] | None = None) -> Batches:
    """The run's loader: prepared when the config says so (sources opened unless given), else on the fly."""
    data = config.data
    if sources is None and not uses_prepared(stages, data):
        return StreamingLoader(MixtureLoader(stages, tokenizer, config.seq_len, data.seed), ends,
                               config.global_batch, rank, world)
    if sources is None:
        sources = open_sources(stages, data, tokenizer, config.seq_len)
    cache = Path(data.cache_dir) if data.cache_dir else run / "data-cache"
    return PreparedLoader(stages, dict(sources), config.seq_len, config.global_batch, ends, cache, data.seed, rank,
                          world, barrier)

