"""Host memory that follows the live tensors: fix glibc's mmap threshold so freed tensor buffers go back to the OS.

glibc serves allocations above its mmap threshold (128 KiB at start) with mmap and returns them to the OS on free,
but every such free raises the threshold (up to 32 MiB), after which tensors of up to 32 MiB come from the heap and
their pages stay resident after they are freed, fragmented between sizes. On CPU training this makes a rank's
resident memory the sum of every size class it ever used rather than what is alive: measured on the 1.1 GB model
(2 ranks, full activation checkpointing) the peak RSS per rank is 3.87 GiB with glibc's default and 2.38 GiB with the
threshold fixed at 128 KiB, at the same step time (the buffers of a training step are megabytes; page-faulting them
costs far less than the arithmetic on them). Setting the threshold with mallopt turns the adjustment off.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024


def fix_mmap_threshold(threshold: int = THRESHOLD) -> bool:
    """mallopt(M_MMAP_THRESHOLD, threshold) where the C library is glibc; returns whether it applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to fix
        return False
