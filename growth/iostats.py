"""Where the wall time of a streaming job goes: cheap timers on the real code path, summarised after the run.

Grow, merge and the checkpoint writer take an optional `IOStats`; each instrumented step (a read, a compute, a
write, a kernel copy, an fsync) records one span (kind, start, end, CPU seconds of its thread) from whichever thread
ran it, at the cost of four clock reads and a list append. Because threads overlap, a kind's time is reported three
ways: `busy` sums its spans over all threads, `covered` is the wall time during which at least one such span ran,
and `cpu` is the CPU time its threads spent in it (on a loaded machine `busy` also counts the time a thread waited
for a core; `cpu` does not). `idle` is the wall time in which no instrumented work ran at all: the waiting the
pipeline failed to hide.

    stats = IOStats()
    run_merge(plan, out, stats=stats)
    print(stats.summary())       # {"wall": 4.1, "busy": {"read": ...}, "covered": {...}, "idle": 0.2}
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

KINDS = ("read", "compute", "write", "copy", "fsync")
Span = tuple[str, float, float, float]  # kind, start, end (perf_counter seconds), CPU seconds of the thread


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
        self.spans: list[Span] = []
        self.started = time.perf_counter()
        self.stopped: float | None = None

    @contextmanager
    def span(self, kind: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.spans.append((kind, start, time.perf_counter(), time.thread_time() - cpu))

    def stop(self) -> None:
        self.stopped = time.perf_counter()

    def summary(self) -> dict:
        """wall, then busy, covered and cpu seconds per kind, and idle seconds, from construction to `stop()`."""
        end = self.stopped if self.stopped is not None else time.perf_counter()
        kinds = list(KINDS) + sorted({s[0] for s in self.spans} - set(KINDS))
        busy = {k: sum(b - a for kk, a, b, _ in self.spans if kk == k) for k in kinds}
        covered = {k: _union([(a, b) for kk, a, b, _ in self.spans if kk == k]) for k in kinds}
        cpu = {k: sum(c for kk, _, _, c in self.spans if kk == k) for k in kinds}
        return {"wall": end - self.started, "busy": busy, "covered": covered, "cpu": cpu,
                "idle": max(0.0, end - self.started - _union([(a, b) for _, a, b, _ in self.spans]))}


@contextmanager
def span(stats: IOStats | None, kind: str) -> Iterator[None]:
    """`stats.span(kind)`, or nothing when the caller passed no stats object."""
    if stats is None:
        yield
    else:
        with stats.span(kind):
            yield
