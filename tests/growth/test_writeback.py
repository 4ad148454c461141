"""Early writeback: each written range is handed to the disk at once, past the lag it is waited for, outputs are the
same with a tiny lag and without it, and a failed fsync fails the commit."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from growth import writeback
from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec
from growth.iostats import IOStats

SPECS = [TensorSpec(f"t{i}", (256, 64), torch.float32) for i in range(8)]


def write(out: Path, stats: IOStats | None = None) -> Path:
    with CheckpointWriter(out, SPECS, max_shard_bytes=200_000, stats=stats) as w:
        for i, s in enumerate(SPECS):
            w.add(s.name, torch.full(s.shape, float(i)))
        w.write_config({"model_type": "toy"})
        return w.commit()


def check(out: Path) -> None:
    ckpt = Checkpoint.open(out)
    assert all(torch.equal(ckpt.read(s.name), torch.full(s.shape, float(i))) for i, s in enumerate(SPECS))


def test_every_written_range_starts_its_writeback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[int, int]] = []
    real = writeback._SYNC_FILE_RANGE
    if real is None:
        pytest.skip("no sync_file_range on this platform")

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        started.append((offset, length))
        return real(fd, offset, length, flags)

    monkeypatch.setattr(writeback, "_SYNC_FILE_RANGE", record)
    stats = IOStats()
    check(write(tmp_path / "out", stats))
    assert len(started) == len(SPECS) and all(length == 256 * 64 * 4 for _, length in started)
    assert len([s for s in stats.spans if s[0] == "fsync"]) == len(SPECS) + 3 + 1  # starts, 3 shards, the publish


def test_small_lag_waits_for_the_disk_and_keeps_the_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if writeback._SYNC_FILE_RANGE is None:
        pytest.skip("no sync_file_range on this platform")
    monkeypatch.setattr(writeback, "LAG_BYTES", 100_000)
    stats = IOStats()
    check(write(tmp_path / "out", stats))
    waits = [s for s in stats.spans if s[0] == "fsync"]
    assert len(waits) > len(SPECS) // 2  # past the lag every range is waited for, then each shard is fsynced


def test_without_sync_file_range_fsync_does_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writeback, "_SYNC_FILE_RANGE", None)
    check(write(tmp_path / "out"))


def test_a_failed_fsync_fails_the_commit_and_publishes_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writeback.os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output error"):
        write(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
