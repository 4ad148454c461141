"""Early writeback: the disk writes each range of an output as soon as it is written, not at the final fsync.

Linux starts writing dirty pages on its own only once they pass dirty_background_ratio (10% of free memory:
gigabytes) or turn 30 s old, so a job that writes a 1.5 GB file and then fsyncs it leaves the disk idle while it
reads and computes, then waits for all of it at the end. `Writeback` asks the kernel to start writing each range the
moment it is written (sync_file_range with SYNC_FILE_RANGE_WRITE, which queues the I/O and returns), so the disk works
alongside the job and the closing fsync finds little left. It runs on one background thread, in order, so a full
device queue never stalls the threads that produce the data, and a file's fsync and close come after every range
written to it. Written pages stay in the page cache, as after `cp`: the kernel evicts them first, and a merge that
is evaluated next reads its output from memory. Where sync_file_range is missing (not Linux) ranges are left to the
kernel and the fsync at close does the work.

    wb = Writeback()
    os.pwrite(fd, data, offset); wb.written(fd, offset, len(data))
    wb.close(fd)        # fsync and close, on the background thread
    wb.wait()           # raises the first error (a failed fsync) in the caller
"""

from __future__ import annotations

import ctypes
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from growth.iostats import IOStats, span

_WRITE = 2  # SYNC_FILE_RANGE_WRITE from <fcntl.h>: start writeback of dirty pages in the range, do not wait


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()


class Writeback:
    def __init__(self, stats: IOStats | None = None) -> None:
        self.stats = stats
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="growbench-writeback")
        self._futures: list[Future] = []
        self._early = _SYNC_FILE_RANGE is not None

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._futures.append(self._pool.submit(fn, *args))

    def written(self, fd: int, offset: int, length: int) -> None:
        """Bytes [offset, offset + length) of `fd` are written: start putting them on disk (from any thread)."""
        if self._early and length > 0:
            self._submit(self._start, fd, offset, length)

    def close(self, fd: int) -> None:
        """fsync and close `fd` once everything queued before it is done."""
        self._submit(self._sync_close, fd)

    def wait(self) -> None:
        """Block until all queued work is done; re-raise the first error here."""
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def _start(self, fd: int, offset: int, length: int) -> None:
        with span(self.stats, "fsync"):  # queueing the I/O is where the file system allocates blocks
            if _SYNC_FILE_RANGE(fd, offset, length, _WRITE) != 0:
                self._early = False  # a file system that refuses it (EINVAL, ESPIPE): leave the work to fsync

    def _sync_close(self, fd: int) -> None:
        try:
            with span(self.stats, "fsync"):
                os.fsync(fd)
        finally:
            os.close(fd)
