"""No silent weak mode: the sandbox's layers are reported at the start of a run and stored with each code benchmark's
run config; without a layer the issue relies on, code execution refuses with one line naming it, and only
GROWBENCH_SANDBOX=weak runs with fewer layers (and says so), never with samples running as root. Each layer is also
looked at from outside while a sample runs (its namespaces, its minimal root), and the cleanup of SysV IPC objects and
the naming of every signal number on their own.

A missing layer is made real by running growbench without a capability (util-linux's setpriv drops it from the
bounding set): without CAP_SYS_ADMIN no namespace can be made, without CAP_SETUID no own uid per sample.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from growth.foundation.settings import sandbox_mode
from suite.eval.evaluate import evaluate
from suite.sandbox import cgroups, child, seccomp
from suite.sandbox.cgroups import Hierarchies
from suite.sandbox.layers import Layers, SandboxRefused, refuse_if_weak
from suite.sandbox.leftovers import ipc_objects, remove_ipc
from suite.sandbox.sample import (
    SandboxLimits,
    SandboxResult,
    _classify,
    layers,
    run_sample,
    signal_name,
    site_packages,
)

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping a capability for real needs root (CI has it)")


def _without(capabilities: str, command: str, **env: str) -> subprocess.CompletedProcess:
    """Run `command` with `capabilities` ("-sys_admin", "-setuid,-setgid") dropped from the bounding set."""
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop a capability"
    return subprocess.run(["setpriv", f"--bounding-set={capabilities}", "--", "sh", "-c", command],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def _open_python() -> str | None:
    """An interpreter whose installation every uid may enter (so a sample can run as its own uid without a mount
    namespace): this one, else Debian's /usr/bin/python3; None when neither is."""
    for python in (sys.executable, "/usr/bin/python3"):
        if not Path(python).exists():
            continue
        stdlib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                                capture_output=True, text=True).stdout.strip()
        if stdlib and child.closed_ancestor(os.path.realpath(stdlib)) is None:
            return python
    return None


def test_strict_mode_names_every_missing_layer_in_one_line() -> None:
    bare = Layers(mode="strict", own_uid=False, namespaces=False, landlock_abi=5, seccomp=True,
                  cgroups=Hierarchies(None, why_not="no writable cgroup"))
    with pytest.raises(SandboxRefused) as info:
        refuse_if_weak(bare)
    message = str(info.value)
    assert "\n" not in message and "GROWBENCH_SANDBOX=weak" in message
    for layer in ("PID namespace", "own uid", "Landlock ABI >= 6", "cgroup limits (no writable cgroup)"):
        assert layer in message, message
    weak = Layers(**{**vars(bare), "mode": "weak"})
    refuse_if_weak(weak)
    assert weak.describe().startswith("code sandbox WEAK (GROWBENCH_SANDBOX=weak), missing PID namespace")
    assert weak.as_dict()["missing"] == bare.missing() and len(bare.missing()) == 4


def test_samples_never_run_as_root_not_even_in_weak_mode() -> None:
    as_root = Layers(mode="weak", own_uid=False, namespaces=False, landlock_abi=7, seccomp=True,
                     cgroups=Hierarchies("v1"), closed_python="/root", caller_root=True)
    for mode in ("weak", "strict"):
        with pytest.raises(SandboxRefused) as info:
            refuse_if_weak(Layers(**{**vars(as_root), "mode": mode}))
        message = str(info.value)
        assert "\n" not in message and "samples would run as root" in message, message
        assert "the Python installation is under /root" in message, message
    refuse_if_weak(Layers(**{**vars(as_root), "caller_root": False}))  # an unprivileged caller: its own uid


def test_every_signal_number_is_named_and_classified() -> None:
    assert (signal_name(9), signal_name(signal.SIGRTMIN + 6), signal_name(32)) == ("SIGKILL", "SIGRTMIN+6",
                                                                                    "signal 32")
    for number in range(1, 65):
        status = json.dumps({"status": number, "timeout": False}).encode()  # the wait status of a death by `number`
        outcome, reason = _classify(status, 0, b"ready", "", SandboxLimits(), 0)
        assert outcome == "failed" and (signal_name(number) in reason or "limit exceeded" in reason), reason


def test_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWBENCH_SANDBOX", "off")
    with pytest.raises(ConfigError, match="GROWBENCH_SANDBOX='off' is not one of strict, weak"):
        sandbox_mode()
    monkeypatch.setenv("GROWBENCH_SANDBOX", "weak")
    assert sandbox_mode() == "weak"
    monkeypatch.setenv(cgroups.CGROUP_ENV, "/tmp")
    with pytest.raises(ConfigError, match="is not a cgroup v2 directory"):
        cgroups.probe()


@needs_root
def test_code_execution_refuses_without_a_pid_namespace(tmp_path: Path) -> None:
    proc = _without("-sys_admin", f"{BIN / 'growbench'} eval {tmp_path} -b mbpp --allow-code-execution "
                    f"--db {tmp_path / 'x.duckdb'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "lacks: PID namespace (needs CAP_SYS_ADMIN)" in proc.stderr and "GROWBENCH_SANDBOX=weak" in proc.stderr
    assert not (tmp_path / "x.duckdb").exists()


@needs_root
def test_weak_mode_refuses_to_run_samples_as_root(tmp_path: Path) -> None:
    proc = _without("-setuid,-setgid", f"{BIN / 'growbench'} eval {tmp_path} -b mbpp --allow-code-execution "
                    f"--db {tmp_path / 'x.duckdb'}", GROWBENCH_SANDBOX="weak")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "even with GROWBENCH_SANDBOX=weak: samples would run as root: no own uid per sample" in proc.stderr
    assert not (tmp_path / "x.duckdb").exists()


@needs_root
def test_weak_mode_runs_says_so_and_still_kills_what_the_sample_left(tmp_path: Path) -> None:
    python = _open_python()
    if python is None:
        pytest.skip("no Python installation other uids may enter: weak mode without namespaces refuses here "
                    "(test_weak_mode_refuses_to_run_samples_as_root)")
    script = tmp_path / "weak.py"
    script.write_text(textwrap.dedent(
        """
        import json, os
        from suite.sandbox.pass_at_k import pass_at_k, require_code_execution
        layers = require_code_execution(True, "mbpp")
        leaver = '''
        import os, threading, time, ctypes
        r, w = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                threading.Thread(target=time.sleep, args=(20,)).start()
                os.write(w, str(os.getpid()).encode())
                ctypes.CDLL(None).syscall(60 if os.uname().machine == "x86_64" else 93, 0)
            os._exit(0)
        raise SystemExit(os.read(r, 32).decode())
        '''
        realtime = "import os, signal\\nos.kill(os.getpid(), signal.SIGRTMIN + 6)\\n"
        _, [[left, good, killed]] = pass_at_k([""], [[leaver, "assert 1 + 1 == 2", realtime]], k=[1], workers=1)
        pid = int(left.reason.split()[-1])
        alive = [t for t in os.listdir(f"/proc/{pid}/task")] if os.path.exists(f"/proc/{pid}") else []
        print(json.dumps({"layers": layers, "good": good.status, "alive": alive, "uids": [left.uid, good.uid],
                          "killed": [killed.status, killed.reason]}))
        """
    ))
    proc = _without("-sys_admin", f"{python} {script}", GROWBENCH_SANDBOX="weak", PYTHONPATH=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["layers"]["mode"] == "weak" and report["layers"]["pid_namespace"] is False
    assert report["layers"]["missing"][0].startswith("PID namespace")
    assert report["good"] == "passed" and report["alive"] == []
    assert all(uid not in (None, 0) for uid in report["uids"]), report
    assert report["killed"] == ["failed", "killed by SIGRTMIN+6"], report
    assert "code sandbox WEAK (GROWBENCH_SANDBOX=weak), missing PID namespace" in proc.stderr


def _sample_init() -> int | None:
    """The host pid of the init of a sample this process runs now: the member of its cgroup that is not root."""
    active = layers()
    for parent in (path for path in (active.cgroups.memory, active.cgroups.v2) if path is not None):
        for procs in parent.glob(f"growbench-sample-{os.getpid()}-*/cgroup.procs"):
            for pid in procs.read_text().split() if procs.exists() else []:
                status = Path(f"/proc/{pid}/status")
                uid_line = next((line for line in status.read_text().splitlines() if line.startswith("Uid:")), "")
                if uid_line.split()[1:2] not in ([], ["0"]):
                    return int(pid)
    return None


@contextmanager
def _running(program: str) -> Iterator[int]:
    """Run `program` through run_sample in a thread; yield the host pid of the sample's init while it runs."""
    result: list[SandboxResult] = []
    thread = threading.Thread(target=lambda: result.append(run_sample(program, SandboxLimits(timeout_s=10.0))))
    thread.start()
    try:
        deadline, init = time.monotonic() + 10, None
        while init is None and time.monotonic() < deadline:
            time.sleep(0.05)
            init = _sample_init()
        assert init is not None, "the sample's init was not found in its cgroup"
        yield init
    finally:
        thread.join()
    assert result and result[0].passed, result


@needs_root
def test_a_sample_runs_in_its_own_namespaces_and_minimal_root() -> None:
    if not layers().namespaces:
        pytest.skip("GROWBENCH_SANDBOX=weak without namespaces")
    with _running("import time\ntime.sleep(2)\n") as pid:
        for kind in ("ipc", "uts", "mnt", "net", "pid"):
            assert os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
        root = Path(f"/proc/{pid}/root")
        stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
        assert (root / stdlib.lstrip("/") / "json" / "__init__.py").is_file()
        host_paths = [ROOT, Path.home(), Path("/home"), Path("/run"), Path("/var"), Path("/etc/passwd"),
                      Path(sys.executable)]
        host_paths = [path for path in host_paths if path.exists() and not stdlib.startswith(f"{path}/")]
        assert len(host_paths) >= 5, host_paths
        for host_path in host_paths:
            assert not (root / str(host_path).lstrip("/")).exists(), host_path
        assert sorted(os.listdir(root / "dev")) == ["null", "random", "urandom", "zero"]
        assert len(os.listdir(root / "tmp")) == 1  # the chain down to its working dir, nothing of the host's /tmp
        for site_dir in site_packages():
            if (root / site_dir.lstrip("/")).is_dir():
                assert os.listdir(root / site_dir.lstrip("/")) == [], site_dir
        mounts = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
        writable = [fields[4] for fields in mounts if "ro" not in fields[5].split(",")]
        assert len(writable) == 1 and writable[0].endswith("/work"), writable  # only its working dir


@needs_root
def test_sysv_ipc_objects_of_a_sample_uid_are_found_and_removed() -> None:
    uid = 1_999_999_999
    pid = os.fork()
    if pid == 0:  # a process of that uid makes one object of each kind, then leaves them behind
        try:
            os.setgid(uid)
            os.setuid(uid)
            libc = ctypes.CDLL(None, use_errno=True)
            made = [libc.shmget(0, 1 << 20, 0o600), libc.msgget(0, 0o600), libc.semget(0, 1, 0o600)]
            os._exit(0 if all(ident >= 0 for ident in made) else 1)
        finally:
            os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0
    assert sorted(kind for kind, _ in ipc_objects(uid)) == ["msg", "sem", "shm"]
    assert sorted(kind for kind, _ in remove_ipc(uid)) == ["msg", "sem", "shm"]
    assert ipc_objects(uid) == []


def test_layers_are_stored_with_the_run_config(tiny_model: Path, benchmark_mirror: Path, store,
                                               capfd: pytest.CaptureFixture) -> None:
    from suite.sandbox import sample

    sample._announce.cache_clear()
    (result,) = evaluate(tiny_model, benchmarks=["mbpp"], limit=1, backend="hf", data_dir=benchmark_mirror,
                         allow_code_execution=True, store=store)
    assert result.status == "finished" and result.n == 1, result
    assert layers().describe() in capfd.readouterr().err
    config = json.loads(store.query("SELECT config FROM eval_runs WHERE run_id = ?", [result.run_id]).iloc[0, 0])
    assert config["sandbox"] == layers().as_dict() and config["sandbox"]["missing"] == []


@pytest.mark.parametrize("machine", sorted(seccomp.AUDIT_ARCH))
def test_the_seccomp_allowlist_matches_the_kernel_headers(machine: str) -> None:
    """Each allowed call's number is the one the kernel headers give it (x86_64's own table, aarch64's generic one);
    a wrong number would allow some other call. The program assembles with every jump in range."""
    header = {"x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
              "aarch64": "/usr/include/asm-generic/unistd.h"}[machine]
    if not Path(header).exists():
        pytest.skip(f"{header} (linux-libc-dev) is not installed")
    numbers = {name: int(number) for _, name, number in
               re.findall(r"#define __NR(3264)?_(\w+)\s+(\d+)\b", Path(header).read_text())}
    numbers.setdefault("newfstatat", numbers.get("fstatat"))  # the generic table calls it __NR3264_fstatat
    column = list(seccomp.AUDIT_ARCH).index(machine)
    table = {**seccomp.ALLOWED, "clone": seccomp.CLONE, "clone3": seccomp.CLONE3, "ioctl": seccomp.IOCTL}
    wrong = {name: (pair[column], numbers.get(name)) for name, pair in table.items()
             if name in numbers and pair[column] != numbers[name]}
    missing = [name for name, pair in table.items() if pair[column] is not None and name not in numbers]
    assert wrong == {}, wrong
    assert set(missing) <= {"fchmodat2"}, missing  # newer than some distributions' headers (452 on both)
    absent = [name for name, pair in table.items() if pair[column] is None]
    assert all(name not in numbers for name in absent), absent
    program = seccomp.program(machine)
    assert len(program) % 8 == 0 and len(program) // 8 < 4096
    assert seccomp.allowed_count(machine) == len(table) - len(absent) - 1  # clone3 only gets ENOSYS
