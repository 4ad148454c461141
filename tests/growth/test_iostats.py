"""The time breakdown: busy time sums spans, covered time is their union, idle is the wall time no span covers."""

from __future__ import annotations

import time

import pytest

from growth.iostats import IOStats, span


def test_summary_sums_unions_and_finds_idle() -> None:
    stats = IOStats()
    base = stats.started
    stats.spans = [("read", base + 0.0, base + 1.0, 0.5), ("read", base + 0.5, base + 2.0, 1.0),
                   ("compute", base + 1.5, base + 2.5, 0.9), ("fsync", base + 4.0, base + 4.5, 0.0)]
    stats.stopped = base + 5.0
    s = stats.summary()
    assert s["wall"] == pytest.approx(5.0)
    assert s["busy"]["read"] == pytest.approx(2.5) and s["covered"]["read"] == pytest.approx(2.0)
    assert s["cpu"]["read"] == pytest.approx(1.5) and s["covered"]["compute"] == pytest.approx(1.0)
    assert s["busy"]["write"] == 0.0 and s["busy"]["copy"] == 0.0
    assert s["idle"] == pytest.approx(5.0 - 2.5 - 0.5)


def test_span_records_wall_and_cpu_time_and_none_records_nothing() -> None:
    stats = IOStats()
    with stats.span("compute"):
        end = time.thread_time() + 0.02
        while time.thread_time() < end:
            pass
    with span(None, "read"):
        pass
    with span(stats, "read"):
        time.sleep(0.01)
    (kind, a, b, cpu), (kind2, c, d, cpu2) = stats.spans
    assert kind == "compute" and b - a >= 0.02 and cpu >= 0.015
    assert kind2 == "read" and d - c >= 0.01 and cpu2 < 0.01
    stats.stop()
    assert stats.summary()["busy"]["compute"] == pytest.approx(b - a)
