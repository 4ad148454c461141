"""The child side of suite/code/sandbox.py: confine this very process, then run one untrusted code sample in it.

suite/code/sandbox.py starts it as `python -I -S -B sandbox_child.py SPEC_JSON`; it is never imported by the parent for
running samples. It uses the standard library only, so it starts fast and the sample's process holds no
site-packages. Layers, in the order they must be applied:

1. namespaces (need CAP_SYS_ADMIN): a network namespace, so the sample sees only a down loopback, and a mount
   namespace whose working dir is a fresh size- and inode-capped tmpfs (noexec, nosuid, nodev), so a sample cannot
   fill the disk with many files each under RLIMIT_FSIZE;
2. rlimits (CPU seconds, address space, file size, processes, open files, no core files), hard = soft, set while
   still privileged so they can never be raised back;
3. drop root (when started as root): a fresh uid/gid of its own, no supplementary groups, no capabilities except
   CAP_DAC_READ_SEARCH when the interpreter's stdlib is not world-readable (e.g. a pyenv under /root); the fresh uid
   also makes RLIMIT_NPROC per sample (the kernel never enforces it for root) and lets the parent kill every process
   the sample left behind;
4. no-new-privs, then Landlock: writes (create, write, truncate, remove, rename, link, mknod) are refused everywhere
   except under the sample's working directory and /dev/null; with Landlock ABI >= 4 TCP bind/connect are refused,
   with ABI >= 6 abstract unix sockets and signals to processes outside the sandbox are refused;
5. seccomp: socket() and io_uring_setup() fail with EPERM (also 32-bit/x32 syscall entry points on x86_64).

A layer that was asked for and fails aborts before the sample runs (no "ready" marker), so the parent reports an
error instead of scoring a sample that ran less confined than promised. Reads are not restricted.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import struct
import sys
import traceback

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CAP_DAC_READ_SEARCH = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_WRITE_FILE, FS_TRUNCATE = 1 << 1, 1 << 14
# remove dir/file, make char/dir/reg/sock/fifo/block/sym: bits 4..12 (ABI 1); refer (rename/link across dirs): ABI 2
FS_MODIFY_TREE = sum(1 << bit for bit in range(4, 13))
FS_REFER = 1 << 13
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1

# (audit arch, socket syscall number) per machine; io_uring_setup is 425 on both.
SECCOMP_ARCHES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
SYS_IO_URING_SETUP = 425
X32_SYSCALL_BIT = 0x40000000
SETUP_FAILED = 121


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    abi = _LIBC.syscall(
        SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION
    )
    return max(int(abi), 0)


def seccomp_supported() -> bool:
    """Whether this machine has a socket-blocking seccomp filter here (Linux on x86_64 or aarch64)."""
    return sys.platform == "linux" and platform.machine() in SECCOMP_ARCHES


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def enter_namespaces(workdir: str, disk_bytes: int, uid: int | None) -> None:
    """New network + mount namespaces; mount a private tmpfs of `disk_bytes` on the working dir."""
    _check(_LIBC.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare(CLONE_NEWNS | CLONE_NEWNET)")
    _check(_LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    options = f"size={disk_bytes},nr_inodes=4096,mode=0700{owner}".encode()
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _check(_LIBC.mount(b"tmpfs", workdir.encode(), b"tmpfs", flags, options), f"mount tmpfs on {workdir}")


def set_limits(limits: dict, processes: int) -> None:
    for name, value in (
        ("RLIMIT_CPU", limits["cpu_seconds"]),
        ("RLIMIT_AS", limits["memory_bytes"]),
        ("RLIMIT_FSIZE", limits["file_bytes"]),
        ("RLIMIT_NPROC", processes),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_root(uid: int, gid: int, keep_read_search: bool) -> None:
    """Become uid/gid with no groups; keep only CAP_DAC_READ_SEARCH (read-only) when asked, else no capability."""
    os.setgroups([])
    os.setgid(gid)
    _check(_LIBC.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
    os.setuid(uid)
    mask = 1 << CAP_DAC_READ_SEARCH if keep_read_search else 0
    header = struct.pack("=Ii", LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("=6I", mask, mask, 0, 0, 0, 0)  # effective, permitted, inheritable for words 0 and 1
    _check(_LIBC.capset(ctypes.c_char_p(header), ctypes.c_char_p(data)), "capset")


def restrict_writes(workdir: str, abi: int) -> None:
    """Landlock: only `workdir` (and /dev/null) writable; TCP and out-of-sandbox signals refused where supported."""
    handled_fs = (
        FS_WRITE_FILE | FS_MODIFY_TREE | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    )
    handled_net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = _check(
        _LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)), 0),
        "landlock_create_ruleset",
    )
    file_rights = FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)
    for path, rights in ((workdir, handled_fs), (os.devnull, file_rights)):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = struct.pack("=Qi", rights, fd)
        _check(
            _LIBC.syscall(
                SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.c_char_p(rule), 0
            ),
            f"landlock_add_rule({path})",
        )
        os.close(fd)
    _check(_LIBC.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    os.close(ruleset)


def block_sockets() -> None:
    """seccomp-BPF: socket() and io_uring_setup() -> EPERM; foreign-arch and x32 syscalls -> EPERM; rest allowed."""
    audit_arch, sys_socket = SECCOMP_ARCHES[platform.machine()]
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    program = [
        (ld_abs, 0, 0, 4),  # A = seccomp_data.arch
        (jeq, 1, 0, audit_arch),
        (ret, 0, 0, deny),
        (ld_abs, 0, 0, 0),  # A = seccomp_data.nr
        (jge, 3, 0, X32_SYSCALL_BIT),
        (jeq, 2, 0, sys_socket),
        (jeq, 1, 0, SYS_IO_URING_SETUP),
        (ret, 0, 0, allow),
        (ret, 0, 0, deny),
    ]
    filters = b"".join(struct.pack("=HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(filters, len(filters))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(program), ctypes.addressof(buffer))
    _check(_LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def count_tasks(uid: int) -> int:
    """Threads of all processes of `uid`: what the kernel counts against RLIMIT_NPROC."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def confine(spec: dict) -> None:
    limits = spec["limits"]
    if spec["namespaces"]:
        enter_namespaces(spec["workdir"], limits["disk_bytes"], spec["uid"])
    os.chdir(spec["workdir"])
    processes = (
        limits["processes"] if spec["uid"] is not None else limits["processes"] + count_tasks(os.getuid())
    )
    set_limits(limits, processes)
    if spec["uid"] is not None:
        drop_root(spec["uid"], spec["gid"], spec["keep_read_search"])
    _check(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    restrict_writes(spec["workdir"], spec["landlock_abi"])
    block_sockets()


def main() -> None:
    spec = json.loads(sys.argv[1])
    marker = spec["marker_fd"]
    try:
        with open(spec["source"], encoding="utf-8") as fh:
            source = fh.read()
        confine(spec)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"sandbox setup failed: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(SETUP_FAILED)
    os.write(marker, b"ready")
    sys.argv = ["sample.py"]
    try:
        # Fresh globals, as HF code_eval does; compiled only now, so even the compiler runs confined.
        exec(compile(source, "sample.py", "exec"), {})  # noqa: S102 - running the confined sample is the point
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: exiting before the asserts is no pass
        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        sys.stderr.flush()
        os._exit(1)
    os.write(marker, b"ok")
    os._exit(0)


if __name__ == "__main__":
    main()
