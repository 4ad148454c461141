"""Run one untrusted code sample in its own confined process: the execution half of the code benchmarks.

Why a process per sample rather than HF code_eval's in-process `exec` behind a "reliability guard": generated code
can loop forever, fork-bomb, allocate without bound, write anywhere and open sockets, and only a separate process
can be killed, rlimited and confined by the kernel. The in-process confinement (namespaces with a tmpfs working
dir, rlimits, a fresh uid, Landlock, seccomp) is done and documented in suite/code/sandbox_child.py; this side does what
only a parent can:

- a scrubbed environment: PATH, HOME and TMPDIR (both the sample's working dir) and a locale; no proxies, no tokens;
- a fresh temp working dir per sample, owned by the sample's uid and removed afterwards; stdout/stderr go to a file
  in a parent-only dir (so RLIMIT_FSIZE bounds them), never to a pipe that could fill the parent's memory;
- a wall-clock timeout, then SIGKILL to the whole process group and, when the sample ran under its own uid, to every
  process of that uid, which also catches children that left the group with setsid().

`layers()` says which layers this machine gives; Landlock and seccomp are required, else nothing runs.
Not enforced: reads (the sample can read what its uid can, or every file when CAP_DAC_READ_SEARCH had to be kept
because the interpreter lives in a private directory such as /root/.pyenv; it can only print what it reads), CPU
share, what /proc shows. Without root the sample keeps the caller's uid: rlimits, Landlock and seccomp still apply,
but RLIMIT_NPROC then counts the caller's own threads too, the sample may chmod the caller's files, there is no
tmpfs cap on the working dir, and leftovers are killed through the process group only. Samples see the standard
library only (`python -I -S`): MBPP and HumanEval need nothing else. The sandbox protects the machine from a sample;
it does not stop a sample written to fake its own "passed" marker (neither does HF code_eval).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from growth.foundation.errors import BackendError, ConfigError

CHILD = Path(__file__).with_name("sandbox_child.py")
# CapEff bits the parent needs: chown/kill/setgid/setuid to run a sample as its own uid, sys_admin for namespaces.
CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 0, 5, 6, 7, 21
_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGKILL: "killed (SIGKILL)",
}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-sample limits. The defaults fit MBPP/HumanEval tests with a wide margin."""

    timeout_s: float = 3.0
    """Wall clock for the whole child, interpreter start included (HF code_eval's default timeout is 3 s)."""
    memory_bytes: int = 1 << 30
    """RLIMIT_AS: address space; a bigger allocation raises MemoryError in the sample."""
    file_bytes: int = 16 << 20
    """RLIMIT_FSIZE: largest file the sample may write, its captured stdout/stderr included."""
    processes: int = 16
    """RLIMIT_NPROC: processes and threads of the sample's uid (a fork bomb stops here)."""
    open_files: int = 64
    """RLIMIT_NOFILE."""
    disk_bytes: int = 64 << 20
    """Size of the tmpfs that is the working dir (with CAP_SYS_ADMIN; else only the per-file limit holds)."""

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_bytes", "file_bytes", "processes", "open_files", "disk_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"sandbox limit {name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class SandboxResult:
    """How one sample ended: passed / failed / timeout / error (the sandbox itself failed), with a short reason."""

    status: str
    reason: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Layers:
    """Which confinement layers this machine gives a sample (Landlock and seccomp are required)."""

    own_uid: bool
    namespaces: bool
    landlock_abi: int
    seccomp: bool
    keep_read_search: bool

    def describe(self) -> str:
        parts = [
            f"landlock abi {self.landlock_abi}",
            "seccomp socket block" if self.seccomp else "no seccomp",
        ]
        parts.append(
            "own uid" + (" (+CAP_DAC_READ_SEARCH)" if self.keep_read_search else "")
            if self.own_uid
            else "caller's uid"
        )
        parts.append("network + mount namespaces" if self.namespaces else "host namespaces")
        return ", ".join(parts)


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _world_readable(path: str) -> bool:
    real = Path(os.path.realpath(path))
    dirs_ok = all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)
    return dirs_ok and bool(real.stat().st_mode & stat.S_IROTH)


@functools.cache
def layers() -> Layers:
    """Probe once per process; raise BackendError where a sample could not be confined (then nothing runs)."""
    from suite.code import sandbox_child

    if sys.platform != "linux":
        raise BackendError(f"the code sandbox needs Linux (Landlock + seccomp); this is {sys.platform}")
    abi = sandbox_child.landlock_abi()
    if abi < 1 or not sandbox_child.seccomp_supported():
        raise BackendError(
            f"code sandbox unavailable here: Landlock ABI {abi} (need >= 1, kernel >= 5.13 with lsm=landlock), "
            f"seccomp filter {'available' if sandbox_child.seccomp_supported() else 'unsupported on this CPU'}"
        )
    caps = _effective_caps()
    own_uid = os.geteuid() == 0 and all(
        caps >> cap & 1 for cap in (CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID)
    )
    readable = _world_readable(sys.executable) and _world_readable(sysconfig.get_paths()["stdlib"])
    return Layers(
        own_uid=own_uid,
        namespaces=bool(caps >> CAP_SYS_ADMIN & 1),
        landlock_abi=abi,
        seccomp=True,
        keep_read_search=own_uid and not readable,
    )


def run_sample(program: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `program` (the sample and its tests, as one Python source) confined; passed means it ran to the end."""
    limits = limits or SandboxLimits()
    active = layers()
    uid = 1_000_000_000 + secrets.randbelow(1_000_000_000) if active.own_uid else None
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="growbench-sandbox-", ignore_cleanup_errors=True) as run_dir:
        run = Path(run_dir)
        work = run / "work"
        work.mkdir()
        if uid is not None:
            os.chown(work, uid, uid)
        (run / "sample.py").write_text(program, encoding="utf-8")
        read_end, write_end = os.pipe()
        try:
            spec = {
                "source": str(run / "sample.py"),
                "workdir": str(work),
                "uid": uid,
                "gid": uid,
                "keep_read_search": active.keep_read_search,
                "namespaces": active.namespaces,
                "landlock_abi": active.landlock_abi,
                "marker_fd": write_end,
                "limits": {
                    "cpu_seconds": int(limits.timeout_s) + 1,
                    "memory_bytes": limits.memory_bytes,
                    "file_bytes": limits.file_bytes,
                    "processes": limits.processes,
                    "open_files": limits.open_files,
                    "disk_bytes": limits.disk_bytes,
                },
            }
            with open(run / "output.log", "wb") as output:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-B", str(CHILD), json.dumps(spec)],
                    cwd=work,
                    env=_scrubbed_env(work),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    pass_fds=(write_end,),
                    start_new_session=True,
                )
            os.close(write_end)
            write_end = -1
            timed_out = _wait(proc, limits.timeout_s)
            _kill_leftovers(proc, uid)
            marker = _read_marker(read_end)
        finally:
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
        last_line = _last_line(run / "output.log")
    return _classify(timed_out, proc.returncode, marker, last_line, limits, time.monotonic() - start)


def _scrubbed_env(work: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return True
    return False


def _kill_leftovers(proc: subprocess.Popen, uid: int | None) -> None:
    """SIGKILL the process group, then (own uid) every process of that uid until none is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if uid is None:
        return
    for _ in range(200):
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit() and _live_owner(entry) == uid]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.005)
    raise BackendError(f"sandbox: processes of uid {uid} survived 200 rounds of SIGKILL")


def _live_owner(pid: str) -> int | None:
    """The uid of a running process; None for a zombie (already dead, waiting for its new parent to reap it)."""
    try:
        owner = os.stat(f"/proc/{pid}").st_uid
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state == "Z" else owner


def _read_marker(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def _last_line(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - size, 0))
        lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _classify(
    timed_out: bool, rc: int, marker: bytes, last_line: str, limits: SandboxLimits, seconds: float
) -> SandboxResult:
    if timed_out:
        return SandboxResult("timeout", f"timed out after {limits.timeout_s:g} s", seconds)
    if not marker.startswith(b"ready"):
        return SandboxResult(
            "error", last_line or f"sandbox exited with {rc} before running the sample", seconds
        )
    if marker == b"readyok" and rc == 0:
        return SandboxResult("passed", "", seconds)
    if rc < 0:
        sig = signal.Signals(-rc)
        return SandboxResult("failed", _SIGNAL_REASONS.get(sig, f"killed by {sig.name}"), seconds)
    return SandboxResult("failed", last_line or f"exit code {rc}", seconds)
