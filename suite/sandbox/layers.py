"""Which confinement layers the code sandbox has on this machine, and whether they are enough to run samples.

A sandbox that quietly runs with fewer layers (no root: the caller's uid and host namespaces; an older kernel: no
signal scoping) is worse than none, because it is trusted. So the layers are probed, reported at the start of a run
and stored with each code benchmark's run config, and in strict mode (the default) code execution refuses with one
line naming what is missing. Only GROWBENCH_SANDBOX=weak (growth/foundation/settings.py) runs with less.

Required in strict mode: a PID namespace (with mount, network, IPC and UTS namespaces and the minimal root they
carry: CAP_SYS_ADMIN), an own uid per sample (root with CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL), Landlock
ABI >= 6 (signal and abstract-socket scoping, Linux >= 6.12) and per-sample cgroup limits (suite/sandbox/cgroups.py).
Required even in weak mode: Landlock, the seccomp allowlist and a sample uid that is not root (root without an own
uid per sample is refused in every mode: its samples would run as root).
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError
from growth.foundation.settings import SANDBOX_ENV
from suite.sandbox import cgroups, child, seccomp
from suite.sandbox.cgroups import Hierarchies

CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 0, 5, 6, 7, 21
SCOPING_ABI = 6


class SandboxRefused(BackendError):
    """Code execution was asked for where the sandbox lacks a layer, and weak mode was not chosen."""


@dataclass(frozen=True)
class Layers:
    """The confinement layers a sample gets here, and the mode that accepted them."""

    mode: str
    own_uid: bool
    namespaces: bool
    """PID, mount, network, IPC and UTS namespaces, and the minimal root (pivot_root) in the mount namespace."""
    landlock_abi: int
    seccomp: bool
    cgroups: Hierarchies
    closed_python: str | None = None
    """A directory above the Python installation that other uids cannot enter (absent from the minimal root with
    namespaces; without them the sample cannot run under its own uid)."""
    caller_root: bool = False
    """Whether the evaluator runs as root: without an own uid per sample its samples would too, refused in any mode."""

    def missing(self) -> list[str]:
        """The strict-mode layers this machine lacks, each with what would give it."""
        gaps = []
        if not self.namespaces:
            gaps.append("PID namespace (needs CAP_SYS_ADMIN)")
        if not self.own_uid and self.closed_python and not self.namespaces:
            gaps.append(f"own uid per sample (the Python installation is under {self.closed_python}, which other "
                        "uids cannot enter, and there is no mount namespace to expose it)")
        elif not self.own_uid:
            gaps.append("own uid per sample (needs root with CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL)")
        if self.landlock_abi < SCOPING_ABI:
            gaps.append(f"Landlock ABI >= {SCOPING_ABI} for signal scoping (this kernel has {self.landlock_abi}; "
                        "Linux >= 6.12)")
        if self.cgroups.limits is None:
            gaps.append(f"per-sample cgroup limits ({self.cgroups.why_not})")
        return gaps

    def as_root(self) -> str | None:
        """Why samples would run as root here (refused even in weak mode), or None when they would not."""
        if not self.caller_root or self.own_uid:
            return None
        gaps = [gap for gap in self.missing() if gap.startswith("own uid")]
        return f"samples would run as root: no {gaps[0] if gaps else 'own uid per sample'}"

    def describe(self) -> str:
        """One line for the start of a run."""
        parts = [
            "PID + mount + network + IPC + UTS namespaces, minimal root" if self.namespaces else "host namespaces",
            "own uid per sample" if self.own_uid else "the caller's uid",
            self.cgroups.describe(),
            f"Landlock ABI {self.landlock_abi} (reads, writes"
            + (", TCP" if self.landlock_abi >= 4 else "")
            + (", signals, abstract sockets" if self.landlock_abi >= SCOPING_ABI else "") + ")",
            f"seccomp allowlist ({seccomp.allowed_count(platform.machine())} system calls)",
        ]
        gaps = self.missing()
        head = f"code sandbox ({self.mode})"
        if gaps:
            head = f"code sandbox WEAK ({SANDBOX_ENV}=weak), missing {'; '.join(gaps)}"
        return f"{head}: {', '.join(parts)}"

    def as_dict(self) -> dict[str, Any]:
        """What is stored with a code benchmark's run config."""
        return {"mode": self.mode, "pid_namespace": self.namespaces, "ipc_uts_namespaces": self.namespaces,
                "minimal_root": self.namespaces, "own_uid": self.own_uid, "landlock_abi": self.landlock_abi,
                "seccomp": "allowlist" if self.seccomp else None, "cgroup_limits": self.cgroups.limits,
                "cgroup_kill": self.cgroups.v2 is not None, "missing": self.missing()}


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def probe(mode: str) -> Layers:
    """What this machine gives a sample; BackendError where not even Landlock and seccomp are there."""
    if sys.platform != "linux":
        raise BackendError(f"the code sandbox needs Linux (Landlock + seccomp); this is {sys.platform}")
    abi = child.landlock_abi()
    if abi < 1 or not child.seccomp_supported():
        raise BackendError(
            f"code sandbox unavailable here: Landlock ABI {abi} (need >= 1, kernel >= 5.13 with lsm=landlock), "
            f"seccomp filter {'available' if child.seccomp_supported() else 'unsupported on this CPU'}"
        )
    caps = _effective_caps()
    root = os.geteuid() == 0
    namespaces = root and bool(caps >> CAP_SYS_ADMIN & 1)
    closed = child.closed_ancestor(os.path.realpath(sysconfig.get_paths()["stdlib"]))
    return Layers(
        mode=mode,
        own_uid=root and all(caps >> cap & 1 for cap in (CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID))
        and (namespaces or closed is None),
        namespaces=namespaces,
        landlock_abi=abi,
        seccomp=True,
        cgroups=cgroups.probe() if root else Hierarchies(None, why_not="not root"),
        closed_python=closed,
        caller_root=root or os.getuid() == 0,
    )


def refuse_if_weak(layers: Layers) -> None:
    """Raise SandboxRefused (one line) in strict mode when a required layer is missing, and in any mode when samples
    would run as root."""
    gaps, as_root = layers.missing(), layers.as_root()
    if gaps and layers.mode != "weak":
        way_out = (f"set {SANDBOX_ENV}=weak to run model-written code with fewer layers" if as_root is None
                   else f"not even {SANDBOX_ENV}=weak runs here: {as_root}")
        raise SandboxRefused(f"code execution refused, the sandbox lacks: {'; '.join(gaps)}. Fix the host, or "
                             f"{way_out}")
    if as_root:
        raise SandboxRefused(f"code execution refused even with {SANDBOX_ENV}=weak: {as_root}. Run as root with "
                             "CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_CHOWN and CAP_KILL, or as an unprivileged "
                             "user that can read the Python installation")
