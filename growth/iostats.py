"""Where the wall time of a streaming job goes: cheap timers on the real code path, summarised after the run.

Grow, merge and the checkpoint writer take an optional `IOStats`; each instrumented step (a read, a compute, a
write, an fsync) records one span (kind, start, end) from whichever thread ran it, at the cost of two clock reads
and a list append. Because threads overlap, a kind's time is reported two ways: `busy` sums its spans over all
threads (the CPU or device time it took), `covered` is the wall time during which at least one such span ran.
`idle` is the wall time in which no instrumented work ran at all, the waiting the pipeline failed to hide.

    stats = IOStats()
    run_merge(plan, out, stats=stats)
    print(stats.summary())       # {"wall": 4.1, "busy": {"read": ...}, "covered": {...}, "idle": 0.2}
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

KINDS = ("read", "compute", "write", "fsync")


def _union(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


class IOStats:
    """Spans of instrumented work; list.append is atomic under the GIL, so threads record without a lock."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self.started = time.perf_counter()
        self.stopped: float | None = None

    @contextmanager
    def span(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spans.append((kind, start, time.perf_counter()))

    def stop(self) -> None:
        self.stopped = time.perf_counter()

    def summary(self) -> dict:
        """wall, busy and covered seconds per kind, and idle seconds, from construction to `stop()` (or now)."""
        end = self.stopped if self.stopped is not None else time.perf_counter()
        kinds = list(KINDS) + sorted({k for k, _, _ in self.spans} - set(KINDS))
        busy = {k: sum(b - a for kk, a, b in self.spans if kk == k) for k in kinds}
        covered = {k: _union([(a, b) for kk, a, b in self.spans if kk == k]) for k in kinds}
        return {"wall": end - self.started, "busy": busy, "covered": covered,
                "idle": max(0.0, end - self.started - _union([(a, b) for _, a, b in self.spans]))}


@contextmanager
def span(stats: IOStats | None, kind: str) -> Iterator[None]:
    """`stats.span(kind)`, or nothing when the caller passed no stats object."""
    if stats is None:
        yield
    else:
        with stats.span(kind):
            yield
