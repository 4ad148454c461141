"""Run one untrusted code sample in its own confined processes: the execution half of the code benchmarks.

Why a process per sample rather than HF code_eval's in-process `exec` behind a "reliability guard": generated code can
loop forever, fork-bomb, allocate without bound, write anywhere, open sockets and read secrets, and only separate
processes can be killed, limited and confined by the kernel. The confinement itself (namespaces, Landlock, own uid,
rlimits, seccomp, the supervisor that owns the sample's PID namespace) is done in suite/sandbox/child.py; this
side does what only the parent can:

- once per process, `layers()`: suite/sandbox/layers.py probes what this machine gives, refuses in strict mode when a
  layer is missing, and the rest is proven by running one trivial sample; `report_layers()` prints them at the
  start of a run and returns what is stored with the run's config;
- per sample: a fresh uid, a cgroup with the sample's memory and process limits (suite/sandbox/cgroups.py), a scrubbed
  environment (PATH, HOME and TMPDIR = the working dir, a locale: no proxies, no tokens), a fresh working dir owned by
  that uid, the folder the child mounts its minimal root on, the sample's code and its tests in two root-only files
  (the supervisor sends the tests only after the sample's code has run), stdout/stderr into a file in a parent-only
  dir (RLIMIT_FSIZE bounds it; never a pipe that could fill the parent's memory);
- afterwards, that nothing of the sample lives on: the supervisor has ended its PID namespace, then the cgroup is
  emptied and removed, no thread of the sample's uid may be left (judged per thread) and no SysV IPC object of it
  (suite/sandbox/leftovers.py). Anything that survived all that makes the sample an "error" and is logged; it never
  stops the evaluation.

The sandbox protects the machine from a sample; it does not stop a sample written to fake its own "passed" marker
(neither does HF code_eval), nor one that fakes the request for its tests to read them early, nor a function of the
sample that inspects its caller's frame once the tests call it: those move a score, they do not reach the machine.
Samples see the standard library only (`python -I -S`; the interpreter's site-packages are masked in the minimal root).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import select
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from growth.foundation.errors import BackendError, ConfigError
from growth.foundation.settings import sandbox_mode
from suite.sandbox.cgroups import SampleCgroup
from suite.sandbox.layers import Layers, probe, refuse_if_weak
from suite.sandbox.leftovers import kill_uid, remove_ipc

CHILD = Path(__file__).with_name("child.py")
SUPERVISOR_GRACE_S = 10.0
_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGKILL: "killed (SIGKILL)",
}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxLimits:
    """Per-sample limits. The defaults fit MBPP/HumanEval tests with a wide margin."""

    timeout_s: float = 3.0
    """Wall clock of the sample from its start (HF code_eval's default timeout is 3 s); then it is killed."""
    memory_bytes: int = 1 << 30
    """memory.max of the whole sample (cgroup; going over fails the sample) and RLIMIT_AS of each of its processes
    (a bigger allocation raises MemoryError)."""
    file_bytes: int = 16 << 20
    """RLIMIT_FSIZE: largest file the sample may write, its captured stdout/stderr included."""
    processes: int = 16
    """pids.max of the whole sample (cgroup) and RLIMIT_NPROC of its uid: processes and threads (a fork bomb stops
    here)."""
    open_files: int = 64
    """RLIMIT_NOFILE."""
    disk_bytes: int = 64 << 20
    """Size of the tmpfs that is the working dir (with namespaces; else only the per-file limit holds)."""
    reads: tuple[str, ...] = ()
    """Paths the benchmark's tests read, beyond the Python installation (MBPP, HumanEval, EvalPlus: none)."""

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
    uid: int | None = None
    """The uid the sample ran as (None: the caller's)."""
    peak_bytes: int | None = None
    """The most memory the whole sample held at once (None without a cgroup memory limit)."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def layers() -> Layers:
    """The layers samples run with here: probed, checked against the mode, proven once per process."""
    return _checked(sandbox_mode())


@functools.cache
def _checked(mode: str) -> Layers:
    active = probe(mode)
    refuse_if_weak(active)
    checks = ["import collections, decimal, hashlib, heapq, itertools, json, math, os, re",
              "assert os.getuid() != 0, 'runs as root'"]
    if active.namespaces:
        checks += ["assert os.getpid() == 1, 'no PID namespace'",
                   f"assert os.uname().nodename == 'sandbox' and not os.path.exists({str(CHILD)!r}), 'host root'"]
    checks += ["def self_test():\n    return 'passed'"]
    result = _run("\n".join(checks) + "\n", SandboxLimits(timeout_s=30.0), active,
                  tests="assert self_test() == 'passed'\n")
    if not result.passed:
        raise BackendError(f"code sandbox self-test failed ({result.status}: {result.reason}); {active.describe()}")
    return active


def report_layers() -> dict:
    """Print the layers once per process (the start of a run) and return them as stored with a run's config."""
    active = layers()
    _announce(active)
    return active.as_dict()


@functools.cache
def _announce(active: Layers) -> None:
    print(active.describe(), file=sys.stderr, flush=True)


def run_sample(program: str, limits: SandboxLimits | None = None, tests: str = "") -> SandboxResult:
    """Run `program` confined, then `tests` in its globals (sent only once `program` has run); passed means both
    ran to the end."""
    return _run(program, limits or SandboxLimits(), layers(), tests)


def _run(program: str, limits: SandboxLimits, active: Layers, tests: str = "") -> SandboxResult:
    uid = 1_000_000_000 + secrets.randbelow(1_000_000_000) if active.own_uid else None
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="growbench-sandbox-", ignore_cleanup_errors=True) as run_dir:
        run = Path(run_dir)
        run.chmod(0o711)  # the sample's uid may pass through to its working dir, not list or read what is here
        work = run / "work"
        work.mkdir(mode=0o700)
        (run / "root").mkdir(mode=0o700)  # the child mounts the sample's minimal root here, in its own namespace
        if uid is not None:
            os.chown(work, uid, uid)
        _write_private(run / "sample.py", program)
        _write_private(run / "tests.py", tests)
        group = SampleCgroup(active.cgroups, limits.memory_bytes, limits.processes + 1)  # + the supervisor
        marker_read, marker_write = os.pipe()
        status_read, status_write = os.pipe()
        try:
            spec = {
                "source": str(run / "sample.py"),
                "tests": str(run / "tests.py"),
                "root": str(run / "root"),
                "hidden": site_packages(),
                "workdir": str(work),
                "uid": uid,
                "gid": uid,
                "namespaces": active.namespaces,
                "landlock_abi": active.landlock_abi,
                "cgroup_procs": group.procs_files,
                "reads": [str(Path(path).resolve()) for path in limits.reads],
                "marker_fd": marker_write,
                "status_fd": status_write,
                "timeout_s": limits.timeout_s,
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
                    cwd=run,
                    env=_scrubbed_env(work),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    pass_fds=(marker_write, status_write),
                    start_new_session=True,
                )
            for fd in (marker_write, status_write):
                os.close(fd)
            marker_write = status_write = -1
            group.join(proc.pid)  # while its interpreter starts; it checks and joins itself before it forks
            _wait_supervisor(proc, group, limits.timeout_s + SUPERVISOR_GRACE_S)
            marker, status = _read_all(marker_read), _read_all(status_read)
        finally:
            for fd in (marker_read, marker_write, status_read, status_write):
                if fd >= 0:
                    os.close(fd)
            oom_kills, peak = group.oom_kills(), group.peak_bytes()
            emptied = group.close()
            survivors = kill_uid(uid) if uid is not None else {}
            ipc = remove_ipc(uid) if uid is not None else []
        last_line = _last_line(run / "output.log")
        if (run / "output.log").stat().st_size >= limits.file_bytes:  # full: the sample's own error was cut off
            last_line = f"output exceeded the file size limit ({limits.file_bytes >> 20} MiB)"
    seconds = time.monotonic() - start
    if survivors or ipc or not emptied:
        if survivors:
            reason = f"sandbox: {sum(map(len, survivors.values()))} threads of uid {uid} outlived the sample"
        elif ipc:
            reason = f"sandbox: {len(ipc)} SysV IPC objects of uid {uid} outlived the sample (removed)"
        else:
            reason = "sandbox: its cgroup could not be emptied"
        log.error("%s (pids %s, ipc %s)", reason, sorted(survivors), ipc)
        return SandboxResult("error", reason, seconds, uid, peak)
    result = _classify(status, proc.returncode, marker, last_line, limits, oom_kills)
    return SandboxResult(*result, seconds, uid, peak)


def _write_private(path: Path, text: str) -> None:
    """Write a file (mode 0600) only the evaluator and its supervisor may read; Landlock keeps any sample from it."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
        fh.write(text)


@functools.cache
def site_packages() -> list[str]:
    """The interpreter's (and its base's) site-packages: masked in the sample's minimal root, where the stdlib
    around them is readable."""
    paths = {*site.getsitepackages(), site.getusersitepackages()}
    for base in {sys.prefix, sys.base_prefix}:
        paths |= {sysconfig.get_path(key, vars={"base": base, "platbase": base}) for key in ("purelib", "platlib")}
    return sorted({os.path.realpath(path) for path in paths if os.path.isdir(path)})


def _scrubbed_env(work: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def _wait_supervisor(proc: subprocess.Popen, group: SampleCgroup, timeout_s: float) -> None:
    """The supervisor ends the sample itself at its timeout; should it hang, kill it and everything under it."""
    pidfd = os.pidfd_open(proc.pid)  # readable the moment it exits (Popen.wait polls with sleeps up to 50 ms)
    try:
        if select.select([pidfd], [], [], timeout_s)[0]:
            proc.wait()
            return
    finally:
        os.close(pidfd)
    group.kill()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the unreaped supervisor still holds its group id: no reuse yet
    except ProcessLookupError:
        pass
    proc.wait()


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _last_line(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - size, 0))
        lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _classify(status: bytes, supervisor_rc: int, marker: bytes, last_line: str, limits: SandboxLimits,
              oom_kills: int) -> tuple[str, str]:
    try:
        reported = json.loads(status)
        rc, timed_out = os.waitstatus_to_exitcode(reported["status"]), reported["timeout"]
    except (ValueError, KeyError, TypeError):
        rc, timed_out = supervisor_rc, supervisor_rc == -signal.SIGKILL
    if oom_kills:
        return "failed", f"memory limit exceeded ({limits.memory_bytes >> 20} MiB for the whole sample)"
    if timed_out:
        return "timeout", f"timed out after {limits.timeout_s:g} s"
    if not marker.startswith(b"ready"):
        return "error", last_line or f"sandbox exited with {rc} before running the sample"
    if marker == b"readyok" and rc == 0:
        return "passed", ""
    if rc < 0:
        return "failed", _SIGNAL_REASONS.get(-rc, f"killed by {signal_name(-rc)}")
    return "failed", last_line or f"exit code {rc}"


def signal_name(number: int) -> str:
    """A name for every signal number: SIGSEGV, SIGRTMIN+6 (numbers `signal.Signals` does not know), signal 32."""
    try:
        return signal.Signals(number).name
    except ValueError:
        pass
    if signal.SIGRTMIN < number < signal.SIGRTMAX:
        return f"SIGRTMIN+{number - signal.SIGRTMIN}"
    return f"signal {number}"
