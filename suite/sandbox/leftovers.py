"""Find and kill what a sample left behind under its uid, judging liveness per thread; remove its SysV IPC objects.

A process whose main thread ended with the raw exit syscall while another thread runs on shows a zombie leader ("Z"
in /proc/PID/stat) for as long as that thread lives: judged by the leader's state it looks dead. So every thread in
/proc/PID/task/* is looked at. Ownership is read from the process's status (real, effective and saved uid), not from
the owner of its /proc entry, which a sample can turn to root with PR_SET_DUMPABLE. Kills go through a pidfd that is
checked to still hold the sample's uid after it was opened, so a recycled pid is never signalled.

SysV shared memory, message queues and semaphore sets outlive every process (a sample that filled 2 x 48 MiB of
shared memory left it to the host; a second sample opened the first one's queue). The sample's own IPC namespace and
the seccomp allowlist keep it from making any; `remove_ipc` checks the host's namespace all the same.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable

IPC_RMID = 0


def _uids(pid: str) -> set[int]:
    with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("Uid:"):
                return {int(value) for value in line.split()[1:4]}
    return set()


def _live(pid: str) -> list[int]:
    """Thread ids of `pid` that have not exited (state neither zombie nor dead)."""
    live = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, IndexError):
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                    live.append(int(tid))
    return live


def live_threads(uid: int) -> dict[int, list[int]]:
    """{pid: live thread ids} of every process of `uid` that still has a thread running."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            if uid in _uids(pid) and (threads := _live(pid)):
                found[int(pid)] = threads
    return found


def kill_uid(uid: int, timeout_s: float = 2.0) -> dict[int, list[int]]:
    """SIGKILL every process of `uid` until no thread of it lives; returns what still lived at the timeout."""
    deadline = time.monotonic() + timeout_s
    while (found := live_threads(uid)) and time.monotonic() < deadline:
        for pid in found:
            _kill(pid, uid)
        time.sleep(0.002)
    return found


def kill_if(pid: int, ours: Callable[[int], bool]) -> None:
    """SIGKILL `pid` through a pidfd when `ours(pid)` holds: the pidfd pins the process first, and only then is it
    checked, so a recycled pid is never signalled. A process that is already gone is no error."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if ours(pid):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except (ProcessLookupError, FileNotFoundError):
        pass
    finally:
        os.close(fd)


def _kill(pid: int, uid: int) -> None:
    kill_if(pid, lambda p: uid in _uids(str(p)))


def ipc_objects(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of every SysV shared memory segment, message queue and semaphore set that `uid` owns or created,
    as /proc/sysvipc lists them in this process's IPC namespace."""
    found = []
    for kind in ("shm", "msg", "sem"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/sysvipc/{kind}", encoding="utf-8") as fh:
            header = fh.readline().split()
            columns = [header.index("uid"), header.index("cuid")]
            for line in fh:
                fields = line.split()
                if uid in (int(fields[column]) for column in columns):
                    found.append((kind, int(fields[1])))
    return found


def remove_ipc(uid: int) -> list[tuple[str, int]]:
    """Remove every SysV IPC object of `uid` (IPC_RMID); returns what was there."""
    libc = ctypes.CDLL(None, use_errno=True)
    found = ipc_objects(uid)
    for kind, ident in found:
        if kind == "sem":
            libc.semctl(ident, 0, IPC_RMID)
        else:
            getattr(libc, f"{kind}ctl")(ident, IPC_RMID, None)
    return found
