"""Which confinement layers the code sandbox has on this machine, and whether they are enough to run samples.

A sandbox that quietly runs with fewer layers (no root: the caller's uid and host namespaces; an older kernel: no
signal scoping) is worse than none, because it is trusted. So the layers are probed, reported at the start of a run
and stored with each code benchmark's run config, and in strict mode (the default) code execution refuses with one
line naming what is missing. Only GROWBENCH_SANDBOX=weak (growth/foundation/settings.py) runs with less.

Required in strict mode: a PID namespace (with mount and network namespaces: CAP_SYS_ADMIN), an own uid per sample
(root with CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL), Landlock ABI >= 6 (signal and abstract-socket scoping,
Linux >= 6.12) and per-sample cgroup limits (suite/sandbox/cgroups.py). Required even in weak mode: Landlock and the
seccomp filter.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError
from growth.foundation.settings import SANDBOX_ENV
from suite.sandbox import cgroups, child
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
    """PID, mount and network namespaces."""
    landlock_abi: int
    seccomp: bool
    cgroups: Hierarchies
    closed_python: str | None = None
    """A directory above the Python installation that other uids cannot enter (masked with namespaces; without
    them the sample cannot run under its own uid)."""

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

    def describe(self) -> str:
        """One line for the start of a run."""
        parts = [
            "PID + mount + network namespaces" if self.namespaces else "host namespaces",
            "own uid per sample" if self.own_uid else "the caller's uid",
            self.cgroups.describe(),
            f"Landlock ABI {self.landlock_abi} (reads, writes"
            + (", TCP" if self.landlock_abi >= 4 else "")
            + (", signals, abstract sockets" if self.landlock_abi >= SCOPING_ABI else "") + ")",
            "seccomp (sockets, namespaces, io_uring, ptrace, keyrings, bpf)",
        ]
        gaps = self.missing()
        head = f"code sandbox ({self.mode})"
        if gaps:
            head = f"code sandbox WEAK ({SANDBOX_ENV}=weak), missing {'; '.join(gaps)}"
        return f"{head}: {', '.join(parts)}"

    def as_dict(self) -> dict[str, Any]:
        """What is stored with a code benchmark's run config."""
        return {"mode": self.mode, "pid_namespace": self.namespaces, "own_uid": self.own_uid,
                "landlock_abi": self.landlock_abi, "seccomp": self.seccomp, "cgroup_limits": self.cgroups.limits,
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
    )


def refuse_if_weak(layers: Layers) -> None:
    """In strict mode, raise SandboxRefused (one line) when a required layer is missing."""
    gaps = layers.missing()
    if gaps and layers.mode != "weak":
        raise SandboxRefused(f"code execution refused, the sandbox lacks: {'; '.join(gaps)}. Fix the host, or set "
                             f"{SANDBOX_ENV}=weak to run model-written code with fewer layers")
