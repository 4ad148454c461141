"""The hostile corpus: each attack is real code run through `pass_at_k` as lm-eval's code metric calls it, as root
(CI runs as root), followed in the same call by a correct sample. Every test checks that the harm did not happen
(no file, no connection, no signal, no read, no chmod, no memory over the limit, no IPC object, no datagram, no
metadata change), that no thread and no SysV IPC object of the attack's uid is left once `pass_at_k` returns (seen
by `ps` and `/proc/sysvipc`, not by the sandbox's own code) and that the evaluation went on (the call returned and
the correct sample after it passed).

Hostile programs give their own processes a bounded life (seconds), so a regression cannot leave them running on
this shared machine; fork bombs and memory hogs run under small per-sample limits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from suite.sandbox.pass_at_k import pass_at_k
from suite.sandbox.sample import SandboxLimits, SandboxResult, layers, site_packages

ROOT = Path(__file__).resolve().parents[3]
GOOD = "def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n"
FAST = SandboxLimits(timeout_s=3.0)
CONTAINED = "SystemExit: contained"
# A probe program records each attempt that was not refused; it ends "contained" when all of them were.
PROBE_START = """
import os
escaped = []
def attempt(name, action, refused=(OSError,)):
    try:
        action()
    except refused:
        return
    escaped.append(name)

import ctypes
libc = ctypes.CDLL(None, use_errno=True)
X86 = os.uname().machine == "x86_64"
def syscall(name, x86, arm, *args):
    # a raw system call (numbers for x86_64, aarch64; None: not on this machine) must fail with EPERM (seccomp)
    number = x86 if X86 else arm
    if number is not None and (libc.syscall(number, *args) >= 0 or ctypes.get_errno() != 1):
        escaped.append(f"{name} (errno {ctypes.get_errno()})")
"""
PROBE_END = '\nraise SystemExit("escaped: " + "; ".join(escaped) if escaped else "contained")\n'
# Starts a program whose attempts would harm the machine if it were not confined: then it only reports.
REFUSE_UNCONFINED = (
    "import os\nif os.getuid() == 0 or os.getpid() != 1:\n"
    "    raise SystemExit('escaped: runs as root or outside its own PID namespace')\n"
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the hostile corpus needs root (CI runs it as root)")


def sysv_ipc_of(uid: int) -> list[str]:
    """Rows of /proc/sysvipc (shared memory, message queues, semaphores) that `uid` owns or created."""
    rows = []
    for kind in ("shm", "msg", "sem"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        header = lines[0].split()
        rows += [row for row in lines[1:] if str(uid) in (row.split()[header.index("uid")],
                                                          row.split()[header.index("cuid")])]
    return rows


def live_threads_of(uid: int) -> list[str]:
    """Threads (by `ps -eL`, with their real/effective/saved uid) of `uid` that are not zombies."""
    rows = subprocess.run(["ps", "-eL", "-o", "ruid=,euid=,suid=,stat=,pid=,lwp="], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    return [row for row in rows if str(uid) in row.split()[:3] and not row.split()[3].startswith(("Z", "X"))]


def attack(program: str, limits: SandboxLimits = FAST, guard: bool = False) -> SandboxResult:
    """Run `program` and then a correct sample through pass_at_k; check the aftermath; return the attack's result.

    `guard`: the program would harm the machine if it ran unconfined, so it first checks that it is not root and is
    PID 1 of its own namespace, and otherwise only reports "escaped".
    """
    source = (REFUSE_UNCONFINED if guard else "") + textwrap.dedent(program)
    scores, [[hostile, good]] = pass_at_k([""], [[source, GOOD]], k=[1], limits=limits, workers=1)
    assert good.passed, f"the evaluator is not usable after the attack: {good}"
    assert "escaped" not in hostile.reason, hostile
    assert hostile.uid is not None and hostile.uid != 0, hostile
    assert live_threads_of(hostile.uid) == [], f"threads of uid {hostile.uid} outlived pass_at_k"
    assert sysv_ipc_of(hostile.uid) == [], f"SysV IPC objects of uid {hostile.uid} outlived pass_at_k"
    return hostile


def probe(body: str, guard: bool = False) -> None:
    """Run the attempts in `body` (calls of `attempt(name, action)`) as one attack; all must be refused."""
    result = attack(PROBE_START + textwrap.dedent(body) + PROBE_END, guard=guard)
    assert result.reason == CONTAINED, result


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside the sandbox that every uid can enter (so only the sandbox stands in the way)."""
    path = Path(tempfile.mkdtemp(prefix="growbench-outside-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_the_full_sandbox_is_what_runs_here() -> None:
    active = layers()
    assert (active.mode, active.missing()) == ("strict", []), active.describe()


def test_writes_outside_its_folder_are_refused(outside: Path) -> None:
    open_dir = outside / "open-to-all"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    victim = outside / "victim.txt"
    victim.write_text("intact")
    victim.chmod(0o666)
    targets = [open_dir / "escaped.txt", Path(f"/tmp/growbench-escaped-{os.getpid()}"),
               Path(f"/dev/shm/growbench-escaped-{os.getpid()}")]
    try:
        probe(_write_attempts(targets, victim, open_dir))
    finally:
        for target in targets:  # should this ever escape, leave nothing behind in /tmp or /dev/shm
            if target.is_dir() and not target.is_symlink():
                target.rmdir()
            else:
                target.unlink(missing_ok=True)
    assert not any(target.exists() or target.is_symlink() for target in targets)
    assert victim.read_text() == "intact" and open_dir.is_dir() and not (open_dir / "moved").exists()


def _write_attempts(targets: list[Path], victim: Path, open_dir: Path) -> str:
    return f"""
        for target in {[str(t) for t in targets]!r}:
            attempt("create " + target, lambda: open(target, "w").write("x"))
            attempt("mkdir " + target, lambda: os.mkdir(target))
            attempt("symlink " + target, lambda: os.symlink("/etc/passwd", target))
            attempt("fifo " + target, lambda: os.mkfifo(target))
        attempt("append", lambda: open({str(victim)!r}, "a").write("x"))
        attempt("truncate", lambda: os.truncate({str(victim)!r}, 0))
        attempt("unlink", lambda: os.unlink({str(victim)!r}))
        attempt("rename", lambda: os.rename({str(victim)!r}, {str(open_dir / "moved")!r}))
        attempt("hardlink in", lambda: os.link({str(victim)!r}, "linked"))
        attempt("rmdir", lambda: os.rmdir({str(open_dir)!r}))
        """


def test_sockets_of_every_family_are_refused() -> None:
    families = sorted({int(value) for name, value in vars(socket).items() if name.startswith("AF_")})
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        probe(
            f"""
            import ctypes, socket
            for family in {families!r}:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
                    attempt(f"socket({{family}}, {{kind}})", lambda: socket.socket(family, kind).close())
            attempt("tcp connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"x"))
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.syscall(425, 8, ctypes.create_string_buffer(120)) >= 0:  # io_uring_setup: sockets without socket()
                escaped.append("io_uring")
            """
        )
        with pytest.raises(socket.timeout):
            listener.accept()


def test_fork_bomb_stops_at_the_sample_process_limit() -> None:
    start = time.monotonic()
    result = attack(
        """
        import os, time
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.fork()
            except OSError:
                pass
        """,
        SandboxLimits(timeout_s=2.0, processes=8),
        guard=True,
    )
    assert result.status in ("failed", "timeout"), result
    assert time.monotonic() - start < 15


def test_infinite_loop_times_out() -> None:
    start = time.monotonic()
    result = attack("while True:\n    pass\n", SandboxLimits(timeout_s=1.0))
    assert result.status == "timeout", result
    assert time.monotonic() - start < 8


def test_setsid_background_processes_are_killed() -> None:
    result = attack(
        """
        import os, time
        for _ in range(3):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(20)
                os._exit(0)
        """
    )
    assert result.passed, result


def test_signals_to_other_processes_are_refused() -> None:
    sentinels = [subprocess.Popen(["sleep", "30"]), subprocess.Popen(["sleep", "30"], start_new_session=True)]
    try:
        targets = [process.pid for process in sentinels] + [os.getpid()]
        probe(
            f"""
            import signal
            for pid in {targets!r}:
                attempt(f"kill {{pid}}", lambda: os.kill(pid, signal.SIGKILL))
                attempt(f"killpg {{pid}}", lambda: os.killpg(pid, signal.SIGKILL))
            try:
                os.kill(-1, signal.SIGKILL)  # every process the sample may signal: here, only its own
            except OSError:
                pass
            """,
            guard=True,
        )
        assert all(process.poll() is None for process in sentinels), "a process outside was signalled"
    finally:
        for process in sentinels:
            process.kill()
            process.wait()


def test_a_gigabyte_of_stdout_is_cut_at_the_file_limit() -> None:
    start = time.monotonic()
    free_before = shutil.disk_usage(tempfile.gettempdir()).free
    result = attack(
        """
        import sys
        chunk = "x" * (1 << 20)
        for _ in range(1024):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        """
    )
    assert (result.status, result.reason) == ("failed", "output exceeded the file size limit (16 MiB)"), result
    assert time.monotonic() - start < 10
    assert free_before - shutil.disk_usage(tempfile.gettempdir()).free < 256 << 20


ZOMBIE_LEADER = """
import ctypes, os, threading, time
SYS_EXIT = {"x86_64": 60, "aarch64": 93}[os.uname().machine]

def linger():
    end = time.monotonic() + 20
    while time.monotonic() < end:
        time.sleep(0.05)

def leave_a_zombie_leader(work):
    # a grandchild leaves the session, then ends its main thread with the raw exit syscall while `work` runs on in
    # another thread: the process shows "Z" (a zombie leader) and is far from dead
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            threading.Thread(target=work).start()
            ctypes.CDLL(None).syscall(SYS_EXIT, 0)
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.3)
"""


def test_zombie_leader_does_not_outlive_the_call() -> None:
    result = attack(ZOMBIE_LEADER + "leave_a_zombie_leader(linger)\n")
    assert result.passed, result


def test_forking_zombie_leader_does_not_stop_the_evaluation() -> None:
    result = attack(
        ZOMBIE_LEADER
        + """
def keep_forking():
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            if os.fork() == 0:
                os.setsid()
                linger()
                os._exit(0)
        except OSError:
            time.sleep(0.005)

leave_a_zombie_leader(keep_forking)
"""
    )
    assert result.passed, result


def test_secrets_are_not_readable(outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWBENCH_TEST_SECRET", "do-not-leak")
    world_readable = outside / "secret.txt"
    world_readable.write_text("secret")
    world_readable.chmod(0o644)
    git_dir = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                             capture_output=True, text=True, check=True).stdout.strip()
    candidates = ["/etc/shadow", ROOT / "pyproject.toml", Path(__file__), Path(git_dir) / "config",
                  Path.home() / ".bashrc", Path.home(), world_readable, f"/proc/{os.getpid()}/environ",
                  "/proc/1/environ", "/etc", "/home"]
    paths = [str(path) for path in candidates if Path(path).exists()]
    assert len(paths) >= 9, paths
    assert Path(__file__).stat().st_mode & stat.S_IROTH  # only the sandbox keeps the sample from this file
    probe(
        f"""
        if "GROWBENCH_TEST_SECRET" in os.environ:
            escaped.append("environment")
        for path in {paths!r}:
            attempt(path, lambda: os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1))
        """
    )


def test_memory_of_several_processes_counts_together() -> None:
    result = attack(
        """
        import os, time
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                block = b"x" * (120 << 20)  # written, so really held; each process is far under the limit
                time.sleep(1)
                os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
        """,
        SandboxLimits(timeout_s=5.0, memory_bytes=256 << 20),
    )
    assert result.status == "failed" and "memory limit exceeded" in result.reason, result
    assert result.peak_bytes is not None and result.peak_bytes <= 256 << 20


def test_chmod_of_a_root_owned_file_outside_is_refused(outside: Path) -> None:
    private = outside / "private.key"
    private.write_text("key")
    private.chmod(0o600)
    before = private.stat()
    probe(
        f"""
        attempt("chmod", lambda: os.chmod({str(private)!r}, 0o666))
        attempt("chown", lambda: os.chown({str(private)!r}, os.getuid(), os.getgid()))
        attempt("utime", lambda: os.utime({str(private)!r}, (0, 0)))
        attempt("chmod dir", lambda: os.chmod({str(outside)!r}, 0o777))
        """
    )
    after = private.stat()
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_mtime) == (0o600, 0, before.st_mtime)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755


def test_exec_and_kernel_surfaces_are_refused() -> None:
    probe(
        """
        import ctypes, subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        arch = os.uname().machine
        calls = {  # name: (x86_64 number, aarch64 number, args)
            "unshare(CLONE_NEWUSER)": (272, 97, (0x10000000,)),
            "clone(CLONE_NEWUSER)": (56, 220, (0x10000000 | 17, 0, 0, 0, 0)),
            "ptrace(PTRACE_TRACEME)": (101, 117, (0, 0, 0, 0)),
            "keyctl(GET_KEYRING_ID)": (250, 219, (0, -3, 0)),
            "bpf": (321, 280, (0, 0, 0)),
            "perf_event_open": (298, 241, (0, 0, -1, -1, 0)),
            "userfaultfd": (323, 282, (0,)),
        }
        for name, (x86, arm, args) in calls.items():
            if libc.syscall(x86 if arch == "x86_64" else arm, *args) >= 0 or ctypes.get_errno() != 1:
                escaped.append(f"{name} (errno {ctypes.get_errno()})")  # EPERM: the seccomp filter said no
        for argv in (["/bin/sh", "-c", "true"], ["/usr/bin/env"]):
            attempt("exec " + argv[0], lambda: subprocess.run(argv, check=False))
        """
    )


def test_no_way_back_to_root_or_higher_limits() -> None:
    probe(
        """
        import ctypes, resource, struct
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(39, 0, 0, 0, 0) != 1 or libc.prctl(21, 0, 0, 0, 0) != 2:  # no-new-privs, seccomp filter
            escaped.append("no-new-privs or seccomp off")
        header, data = struct.pack("=Ii", 0x20080522, 0), ctypes.create_string_buffer(24)
        if libc.capget(header, data) != 0 or any(struct.unpack("=6I", data.raw)):
            escaped.append("capabilities")
        if 0 in (os.getuid(), os.geteuid()):
            escaped.append("root")
        attempt("setuid(0)", lambda: os.setuid(0))
        attempt("setgid(0)", lambda: os.setgid(0))
        attempt("setgroups", lambda: os.setgroups([0]))
        for limit in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE, resource.RLIMIT_CPU):
            attempt(f"raise rlimit {limit}", lambda: resource.setrlimit(limit, (1 << 40, 1 << 40)), (ValueError,))
        """
    )


def _shmem_kib() -> int:
    return next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("Shmem:"))


def test_sysv_ipc_neither_outlives_a_sample_nor_links_two() -> None:
    key = 0x6B000000 + os.getpid()
    shmem_before = _shmem_kib()
    probe(  # the first sample makes shared memory (filled), a message queue with a message, semaphores, a mqueue
        f"""
        IPC_CREAT = 0o1000
        shm = libc.shmget({key}, 48 << 20, IPC_CREAT | 0o666)
        if shm >= 0:
            escaped.append("shmget")
            libc.shmat.restype = ctypes.c_void_p
            address = libc.shmat(shm, None, 0)
            if address not in (None, ctypes.c_void_p(-1).value):
                ctypes.memset(address, 1, 48 << 20)
        queue = libc.msgget({key}, IPC_CREAT | 0o666)
        if queue >= 0:
            escaped.append("msgget")
            libc.msgsnd(queue, ctypes.create_string_buffer(b"\\1\\0\\0\\0\\0\\0\\0\\0hello"), 5, 0)
        if libc.semget({key}, 4, IPC_CREAT | 0o666) >= 0:
            escaped.append("semget")
        if libc.mq_open(b"/growbench-linked", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0:
            escaped.append("mq_open")
        """,
        guard=True,
    )
    probe(  # a second sample looks for what the first one left
        f"""
        for kind in ("shm", "msg", "sem"):
            if getattr(libc, kind + "get")({key}, *((0,) if kind == "msg" else (0, 0))) >= 0:
                escaped.append("opened the first sample's " + kind)
        if libc.mq_open(b"/growbench-linked", os.O_RDWR) >= 0:
            escaped.append("opened the first sample's mqueue")
        """
    )
    assert not any(f"{key:#010x}"[2:] in row for kind in ("shm", "msg", "sem")
                   for row in Path(f"/proc/sysvipc/{kind}").read_text().splitlines())
    assert _shmem_kib() - shmem_before < 24 << 10  # 48 MiB filled would show; other tests' noise would not


@pytest.fixture
def host_socket(outside: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A root datagram listener on a host path every uid may write to, as journald's or syslog's are."""
    path = outside / "host.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        path.chmod(0o777)
        listener.settimeout(0.3)
        yield path, listener


def test_datagrams_to_host_unix_sockets_are_refused(host_socket: tuple[Path, socket.socket]) -> None:
    path, listener = host_socket
    probe(
        f"""
        import socket
        path = {str(path)!r}
        def pair_then_send():
            one, _ = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            one.sendto(b"from the sample", path)
        attempt("socketpair + sendto", pair_then_send)
        attempt("socket + sendto", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", path))
        attempt("connect", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(path))
        syscall("socketpair", 53, 199, 1, 2, 0, ctypes.create_string_buffer(8))
        address = ctypes.create_string_buffer(b"\\1\\0" + path.encode(), 110)  # sockaddr_un
        for fd in range(3, 16):  # whatever the process holds: sendto may not send from any of them
            syscall(f"sendto on fd {{fd}}", 44, 206, fd, b"x", 1, 0, address, 110)
        """
    )
    with pytest.raises((socket.timeout, BlockingIOError)):
        listener.recv(64)


def test_metadata_writes_outside_its_folder_are_refused(outside: Path) -> None:
    shared = outside / "world-writable.txt"
    shared.write_text("a channel between samples?")
    shared.chmod(0o666)
    os.utime(shared, (1_000_000, 1_000_000))
    probe(
        f"""
        path = {str(shared)!r}
        attempt("utime now", lambda: os.utime(path))
        attempt("utime set", lambda: os.utime(path, (0, 0)))
        attempt("setxattr", lambda: os.setxattr(path, "user.channel", b"1"))
        attempt("removexattr", lambda: os.removexattr(path, "user.channel"))
        attempt("chmod", lambda: os.chmod(path, 0o777))
        attempt("setxattr in its own folder", lambda: os.setxattr(".", "user.channel", b"1"))
        """
    )
    after = shared.stat()
    assert (after.st_mtime, after.st_atime, stat.S_IMODE(after.st_mode)) == (1_000_000, 1_000_000, 0o666)
    assert os.listxattr(shared) == []


def test_host_paths_do_not_exist_for_a_sample(outside: Path) -> None:
    link = outside / "link"
    link.symlink_to("/etc/passwd")
    (outside / "readable.txt").write_text("host")
    paths = [str(path) for path in (ROOT, ROOT / "pyproject.toml", outside, link, outside / "readable.txt",
                                    Path.home() / ".bashrc", "/home", "/run", "/var/log", "/etc/hostname")
             if os.path.lexists(path)]
    assert len(paths) >= 7, paths
    probe(
        f"""
        import socket
        for path in {paths!r}:
            attempt("stat " + path, lambda: os.stat(path, follow_symlinks=False))
            attempt("readlink " + path, lambda: os.readlink(path), (OSError,))
        attempt("list /tmp", lambda: [name for name in os.listdir("/tmp") if "growbench-sandbox" not in name][0],
                (OSError, IndexError))
        if libc.inotify_init1(0) >= 0:
            escaped.append("inotify")
        syscall("inotify_init1", 294, 26, 0)
        syscall("fanotify_init", 300, 262, 0, 0)
        handle, mount_id = ctypes.create_string_buffer(128), ctypes.c_int()
        syscall("name_to_handle_at", 303, 264, -100, b"/", handle, ctypes.byref(mount_id), 0)
        if os.uname().nodename == {socket.gethostname()!r}:
            escaped.append("the host's name")
        """
    )


def test_host_kernel_resources_are_refused() -> None:
    aio_before = int(Path("/proc/sys/fs/aio-nr").read_text())
    probe(
        """
        context = ctypes.c_ulong(0)
        syscall("io_setup", 206, 0, 65536, ctypes.byref(context))
        syscall("io_submit", 209, 2, 0, 1, ctypes.byref(ctypes.c_void_p()))
        syscall("modify_ldt", 154, None, 1, ctypes.create_string_buffer(16), 16)
        syscall("memfd_secret", 447, 447, 0)
        syscall("memfd_create", 319, 279, b"x", 0)
        syscall("mq_open", 240, 180, b"growbench", 0o102, 0o600, None)
        syscall("pidfd_open", 434, 434, 1, 0)
        syscall("process_vm_readv", 310, 270, 1, None, 0, None, 0, 0)
        syscall("add_key", 248, 217, b"user", b"growbench", b"x", 1, -2)
        syscall("mknod char device", 133, None, b"null-device", 0o20666, 0x103)
        syscall("mknodat char device", 259, 33, -100, b"null-device", 0o20666, 0x103)
        syscall("mount", 165, 40, b"none", b".", b"tmpfs", 0, None)
        syscall("execve", 59, 221, b"/bin/sh", None, None)
        syscall("ioctl TIOCSTI", 16, 29, 0, 0x5412, b"x")
        syscall("setxattr", 188, 5, b".", b"user.x", b"1", 1, 0)
        syscall("utimensat", 280, 88, -100, b".", None, 0)
        syscall("chown", 92, None, b".", 0, 0)
        syscall("sethostname", 170, 161, b"x", 1)
        """,
        guard=True,
    )
    assert int(Path("/proc/sys/fs/aio-nr").read_text()) - aio_before < 65536


def test_the_tests_arrive_only_after_the_sample_ran() -> None:
    """While the sample's own code runs, its tests are in no frame, object, fd or file it can reach."""
    reader = f"""
        import gc, os, sys
        needle = "-".join(["growbench", "canary", str({os.getpid()})])  # built here: not a constant of this code
        def holds(value):
            return value is not needle and isinstance(value, (str, bytes)) and needle in str(value)
        found = []
        frame = sys._getframe(1)
        while frame is not None:  # every caller up to the top of the process
            found += [name for name, value in {{**frame.f_locals, **frame.f_globals}}.items() if holds(value)]
            frame = frame.f_back
        for thing in gc.get_objects():
            items = thing.values() if isinstance(thing, dict) else thing if isinstance(thing, (list, tuple)) else ()
            found += ["object" for item in items if holds(item)]
        for fd in range(64):  # whatever it holds open, without asking for the tests
            try:
                os.set_blocking(fd, False)
                if needle.encode() in os.read(fd, 1 << 20):
                    found.append(f"fd {{fd}}")
            except OSError:
                pass
        for path in (os.path.join(os.path.dirname(os.getcwd()), name) for name in ("tests.py", "sample.py")):
            if os.path.exists(path):
                found.append(path)
        """
    tests = f"assert not found, found\nassert 'growbench-canary-{os.getpid()}'\n"
    _, [[result, good]] = pass_at_k([tests], [[textwrap.dedent(reader), GOOD]], k=[1], workers=1)
    assert result.passed, result
    # the same tests after a sample without `found`: they did run in the sample's globals
    assert good.status == "failed" and "NameError" in good.reason, good


def test_site_packages_of_the_interpreter_are_not_importable() -> None:
    packages = {site_dir: sorted(name for name in os.listdir(site_dir)
                                 if Path(site_dir, name, "__init__.py").exists())[:5] for site_dir in site_packages()}
    assert any(packages.values()), packages
    probe(
        f"""
        import sys
        for site_dir, names in {packages!r}.items():
            sys.path.insert(0, site_dir)
            for name in names:
                attempt("import " + name, lambda: __import__(name), (ImportError, OSError))
        """
    )


def test_a_realtime_signal_to_itself_does_not_stop_the_evaluation() -> None:
    result = attack(f"import os\nos.kill(os.getpid(), {signal.SIGRTMIN + 6})\nos.kill(os.getpid(), 33)\n")
    assert result.status in ("passed", "failed"), result
