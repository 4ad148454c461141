"""The seccomp filter of a code sample: an allowlist of the system calls CPython and its standard library make for
benchmark programs; every other call fails with EPERM.

Why an allowlist: a denylist misses what nobody thought of (`socketpair` + `sendto` reached host unix sockets,
inotify watched host folders, `io_setup` took the host's AIO pool, then `modify_ldt`, `memfd_secret` ...). The list
is what MBPP's 500 and HumanEval's 164 canonical solutions call under strace (read, write, openat, newfstatat, lseek,
mmap, brk, futex, rt_sigaction, ioctl(TCGETS), getdents64, readlink, getrandom, sysinfo, prlimit64), plus what the
standard library needs for threads, fork and wait, pipes, select/poll, sleeping, clocks, signals to its own processes
and files inside the working dir. Left out, so EPERM: sockets of every kind, SysV IPC and POSIX message queues,
inotify and fanotify, AIO and io_uring, xattrs, utime, chown, mknod, exec, namespaces and mounts, ptrace and
process_vm_*, keyrings, bpf, perf events, userfaultfd, memfd_create and memfd_secret, modify_ldt, set*id, pidfds.

Arguments are checked for two calls: clone may not ask for a namespace (clone3, whose flags live in memory a filter
cannot read, gets ENOSYS so libc falls back to clone), and ioctl only does the queries Python makes on its own fds
(TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX). Calls of another architecture and x32 calls: EPERM.
The filter is standard-library only: the sandbox's child process (suite/sandbox/child.py) loads it.
"""

from __future__ import annotations

import struct

# audit architecture of each machine the filter knows
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# name: (x86_64 number, aarch64 number); None where the machine has no such call (aarch64 has only the *at forms).
ALLOWED: dict[str, tuple[int | None, int | None]] = {
    # reading and writing open files
    "read": (0, 63), "write": (1, 64), "readv": (19, 65), "writev": (20, 66), "pread64": (17, 67),
    "pwrite64": (18, 68), "preadv": (295, 69), "pwritev": (296, 70), "preadv2": (327, 286), "pwritev2": (328, 287),
    "lseek": (8, 62), "close": (3, 57), "close_range": (436, 436), "dup": (32, 23), "dup2": (33, None),
    "dup3": (292, 24), "fcntl": (72, 25), "pipe": (22, None), "pipe2": (293, 59), "fsync": (74, 82),
    "fdatasync": (75, 83), "ftruncate": (77, 46), "truncate": (76, 45), "fallocate": (285, 47), "flock": (73, 32),
    "sendfile": (40, 71), "copy_file_range": (326, 285),
    # paths (the minimal root and Landlock decide which exist and which may be changed)
    "open": (2, None), "openat": (257, 56), "stat": (4, None), "fstat": (5, 80), "lstat": (6, None),
    "newfstatat": (262, 79), "statx": (332, 291), "statfs": (137, 43), "fstatfs": (138, 44), "access": (21, None),
    "faccessat": (269, 48), "faccessat2": (439, 439), "getdents": (78, None), "getdents64": (217, 61),
    "getcwd": (79, 17), "chdir": (80, 49), "fchdir": (81, 50), "mkdir": (83, None), "mkdirat": (258, 34),
    "rmdir": (84, None), "unlink": (87, None), "unlinkat": (263, 35), "rename": (82, None), "renameat": (264, 38),
    "renameat2": (316, 276), "link": (86, None), "linkat": (265, 37), "symlink": (88, None), "symlinkat": (266, 36),
    "readlink": (89, None), "readlinkat": (267, 78), "chmod": (90, None), "fchmod": (91, 52),
    "fchmodat": (268, 53), "fchmodat2": (452, 452), "umask": (95, 166),
    # memory
    "brk": (12, 214), "mmap": (9, 222), "munmap": (11, 215), "mprotect": (10, 226), "mremap": (25, 216),
    "madvise": (28, 233), "msync": (26, 227),
    # processes and threads (clone: see CLONE_NAMESPACES)
    "fork": (57, None), "vfork": (58, None), "wait4": (61, 260), "waitid": (247, 95), "exit": (60, 93),
    "exit_group": (231, 94), "set_tid_address": (218, 96), "set_robust_list": (273, 99), "rseq": (334, 293),
    "futex": (202, 98), "sched_yield": (24, 124), "sched_getaffinity": (204, 123), "getpid": (39, 172),
    "getppid": (110, 173), "gettid": (186, 178), "getuid": (102, 174), "geteuid": (107, 175), "getgid": (104, 176),
    "getegid": (108, 177), "getresuid": (118, 148), "getresgid": (120, 150), "getgroups": (115, 158),
    "getpgid": (121, 155), "getpgrp": (111, None), "getsid": (124, 156), "setsid": (112, 157),
    "setpgid": (109, 154), "prctl": (157, 167), "arch_prctl": (158, None), "prlimit64": (302, 261),
    "getrusage": (98, 165), "times": (100, 153), "uname": (63, 160), "sysinfo": (99, 179), "getrandom": (318, 278),
    "capget": (125, 90), "getcpu": (309, 168), "restart_syscall": (219, 128),
    # signals (to its own processes: the PID namespace and Landlock scoping decide which exist)
    "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131), "rt_sigaction": (13, 134),
    "rt_sigprocmask": (14, 135), "rt_sigreturn": (15, 139), "rt_sigpending": (127, 136), "rt_sigsuspend": (130, 133),
    "rt_sigtimedwait": (128, 137), "sigaltstack": (131, 132), "pause": (34, None), "alarm": (37, None),
    "setitimer": (38, 103), "getitimer": (36, 102),
    # clocks and sleeping
    "clock_gettime": (228, 113), "clock_getres": (229, 114), "clock_nanosleep": (230, 115), "nanosleep": (35, 101),
    "gettimeofday": (96, 169), "time": (201, None),
    # waiting on its own fds
    "poll": (7, None), "ppoll": (271, 73), "select": (23, None), "pselect6": (270, 72), "epoll_create": (213, None),
    "epoll_create1": (291, 20), "epoll_ctl": (233, 21), "epoll_wait": (232, None), "epoll_pwait": (281, 22),
    "epoll_pwait2": (441, 441),
}
CLONE, CLONE3, IOCTL = (56, 220), (435, 435), (16, 29)
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: what clone() may not ask for.
CLONE_NAMESPACES = 0x7E020000
# TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIONCLEX, FIOCLEX (the same numbers on x86_64 and aarch64)
IOCTL_COMMANDS = (0x5401, 0x5413, 0x541B, 0x5421, 0x5450, 0x5451)
X32_SYSCALL_BIT = 0x40000000
RET_ALLOW, RET_EPERM, RET_ENOSYS = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38  # SECCOMP_RET_ALLOW / RET_ERRNO
# seccomp_data offsets: nr, arch, then the low 32 bits of args[0] and args[1] (little-endian)
NR, ARCH, ARG0, ARG1 = 0, 4, 16, 24
LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06


def allowed_count(machine: str) -> int:
    """How many system calls the filter lets through on `machine` (clone and ioctl with their argument checks)."""
    column = list(AUDIT_ARCH).index(machine)
    return sum(numbers[column] is not None for numbers in ALLOWED.values()) + 2


def program(machine: str) -> bytes:
    """The classic-BPF program for `machine`, assembled (jump targets are labels, jumps only go forward)."""
    column = list(AUDIT_ARCH).index(machine)
    allowed = sorted({numbers[column] for numbers in ALLOWED.values() if numbers[column] is not None})
    code: list[tuple] = [
        (LD_ABS, 0, 0, ARCH),
        (JEQ, 0, "deny", AUDIT_ARCH[machine]),
        (LD_ABS, 0, 0, NR),
        (JGE, "deny", 0, X32_SYSCALL_BIT),
        (JEQ, "enosys", 0, CLONE3[column]),
        (JEQ, "clone", 0, CLONE[column]),
        (JEQ, "ioctl", 0, IOCTL[column]),
        *[(JEQ, "allow", 0, number) for number in allowed],
        ("deny",), (RET, 0, 0, RET_EPERM),
        ("enosys",), (RET, 0, 0, RET_ENOSYS),
        ("clone",), (LD_ABS, 0, 0, ARG0), (JSET, "deny_argument", "allow", CLONE_NAMESPACES),
        ("ioctl",), (LD_ABS, 0, 0, ARG1), *[(JEQ, "allow", 0, command) for command in IOCTL_COMMANDS],
        ("deny_argument",), (RET, 0, 0, RET_EPERM),
        ("allow",), (RET, 0, 0, RET_ALLOW),
    ]
    return _assemble(code)


def _assemble(items: list[tuple]) -> bytes:
    labels, code = {}, []
    for item in items:
        if len(item) == 1:
            labels[item[0]] = len(code)
        else:
            code.append(item)

    def offset(target: int | str, at: int) -> int:
        jump = labels[target] - at - 1 if isinstance(target, str) else target
        if not 0 <= jump <= 255:
            raise ValueError(f"seccomp jump of {jump} at instruction {at} does not fit classic BPF")
        return jump

    return b"".join(
        struct.pack("=HBBI", op, offset(jt, at), offset(jf, at), k) for at, (op, jt, jf, k) in enumerate(code)
    )
