"""One cgroup per code sample: memory and process limits over the whole sample, and a kill that misses nothing.

Why: rlimits hold per process (RLIMIT_AS: a sample of 4 processes held 4x the limit) or per uid; a cgroup counts every
process and thread of the sample together, and `cgroup.kill` (or killing what `cgroup.procs` lists) reaches processes
that left the sample's process group or session. Where the limits come from, the first that works:

- cgroup v2: a child of $GROWBENCH_SANDBOX_CGROUP, else of the caller's own cgroup, when that one hands the memory and
  pids controllers to its children (`cgroup.subtree_control`): memory.max, memory.swap.max = 0, memory.oom.group = 1,
  pids.max;
- cgroup v1 (hybrid hosts whose controllers are bound to v1, like this project's CI machine): a child of the caller's
  own memory and pids cgroups: memory.limit_in_bytes (+ memory.memsw.limit_in_bytes where swap is accounted),
  pids.max.

Children of the caller's own cgroups stay under the caller's limits. A writable v2 hierarchy also gives `cgroup.kill`
(Linux >= 5.14), with or without controllers; v1 groups are emptied by SIGKILLing what they list through pidfds that
are checked to be members after they are opened, so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from growth.foundation.errors import ConfigError
from suite.sandbox.leftovers import kill_if

CGROUP_ENV = "GROWBENCH_SANDBOX_CGROUP"
PREFIX = "growbench-sample-"


@dataclass(frozen=True)
class Hierarchies:
    """Where this process can make per-sample cgroups, and which kind gives the limits."""

    limits: str | None
    """"v2" or "v1" (where memory and pids limits come from), None where neither is available."""
    v2: Path | None = None
    """Parent of the per-sample v2 groups (writable), also without controllers: it gives cgroup.kill."""
    memory: Path | None = None
    """Parent of the per-sample v1 memory groups (limits == "v1")."""
    pids: Path | None = None
    """Parent of the per-sample v1 pids groups (limits == "v1")."""
    why_not: str = ""
    """Why there are no limits (for the refusal message)."""

    def describe(self) -> str:
        if self.limits is None:
            return "no per-sample cgroup"
        kill = " + cgroup.kill" if self.v2 is not None else ""
        return f"cgroup {self.limits} memory + pids per sample{kill}"


def _mounts() -> dict[str, tuple[str, Path]]:
    """{"cgroup2" | v1 controller: (root of the mount inside its hierarchy, mount point)} from mountinfo."""
    found: dict[str, tuple[str, Path]] = {}
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            tail = fields[fields.index("-") + 1:]
            point = Path(fields[4].encode().decode("unicode_escape"))
            if tail[0] == "cgroup2":
                found.setdefault("cgroup2", (fields[3], point))
            elif tail[0] == "cgroup":
                for option in tail[2].split(","):
                    if option in ("memory", "pids"):
                        found.setdefault(option, (fields[3], point))
    return found


def _own_dir(mount: tuple[str, Path] | None, path: str | None) -> Path | None:
    if mount is None or path is None:
        return None
    root, point = mount
    if root != "/" and not (path == root or path.startswith(root + "/")):
        return None
    relative = path[len(root):] if root != "/" else path
    return point / relative.lstrip("/")


def _own_paths() -> dict[str, str]:
    """{"cgroup2" | v1 controller: this process's cgroup path} from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            hierarchy, controllers, path = line.rstrip("\n").split(":", 2)
            if hierarchy == "0" and not controllers:
                paths["cgroup2"] = path
            for controller in controllers.split(","):
                if controller in ("memory", "pids"):
                    paths[controller] = path
    return paths


def _can_make_child(parent: Path | None, needed: str) -> bool:
    """Whether a child group can be made under `parent` and holds the file `needed` (made and removed again)."""
    if parent is None:
        return False
    probe = parent / f"{PREFIX}probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        return (probe / needed).exists()
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def _remove_stale(parent: Path | None) -> None:
    """Remove empty per-sample groups left by evaluators that died (their pid, in the name, is gone)."""
    if parent is None or not parent.is_dir():
        return
    for group in parent.glob(f"{PREFIX}*"):
        owner = group.name.removeprefix(PREFIX).removeprefix("probe-").split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):  # a group that still holds processes cannot be removed
                group.rmdir()


def probe() -> Hierarchies:
    """Find the hierarchies this process may use for per-sample groups (makes and removes one probe group each)."""
    mounts, own = _mounts(), _own_paths()
    override = os.environ.get(CGROUP_ENV)
    if override:
        v2 = Path(override)
        if not (v2 / "cgroup.procs").is_file() or not (v2 / "cgroup.controllers").is_file():
            raise ConfigError(f"{CGROUP_ENV}={override} is not a cgroup v2 directory")
    else:
        v2 = _own_dir(mounts.get("cgroup2"), own.get("cgroup2"))
    memory = _own_dir(mounts.get("memory"), own.get("memory"))
    pids = _own_dir(mounts.get("pids"), own.get("pids"))
    for parent in (v2, memory, pids):
        _remove_stale(parent)
    v2 = v2 if _can_make_child(v2, "cgroup.kill") else None
    delegated = set((v2 / "cgroup.subtree_control").read_text().split()) if v2 else set()
    if v2 is not None and {"memory", "pids"} <= delegated:
        return Hierarchies("v2", v2=v2)
    if _can_make_child(memory, "memory.limit_in_bytes") and _can_make_child(pids, "pids.max"):
        return Hierarchies("v1", v2=v2, memory=memory, pids=pids)
    where = f"{v2 or override or 'own cgroup v2'}"
    return Hierarchies(None, v2=v2, why_not=f"{where} does not delegate memory+pids to children and no writable "
                                              "cgroup v1 memory + pids hierarchies")


class SampleCgroup:
    """The cgroups of one sample, made with its limits; `close()` kills what is in them and removes them."""

    def __init__(self, where: Hierarchies, memory_bytes: int, tasks: int) -> None:
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self.dirs: list[Path] = []
        self.memory: Path | None = None
        try:
            if where.v2 is not None:
                group = self._make(where.v2)
                if where.limits == "v2":
                    self.memory = group
                    _write(group / "memory.max", memory_bytes)
                    _write(group / "memory.swap.max", 0, optional=True)
                    _write(group / "memory.oom.group", 1, optional=True)
                    _write(group / "pids.max", tasks)
            if where.limits == "v1":
                self.memory = self._make(where.memory)
                _write(self.memory / "memory.limit_in_bytes", memory_bytes)
                _write(self.memory / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)
                _write(self._make(where.pids) / "pids.max", tasks)
        except BaseException:
            self.close()
            raise

    def _make(self, parent: Path | None) -> Path:
        assert parent is not None
        group = parent / self.name
        group.mkdir()
        self.dirs.append(group)
        return group

    def join(self, pid: int) -> None:
        """Move `pid` (an unreaped child of this process: its pid cannot have been reused) into every group."""
        for procs in self.procs_files:
            with contextlib.suppress(ProcessLookupError):
                _write(Path(procs), pid)

    @property
    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files the sample's supervisor writes itself into before it forks the sample."""
        return [str(group / "cgroup.procs") for group in self.dirs]

    def oom_kills(self) -> int:
        """How many processes the OOM killer took in this sample's memory group."""
        if self.memory is None:
            return 0
        events = "memory.events" if (self.memory / "memory.events").exists() else "memory.oom_control"
        for line in (self.memory / events).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_bytes(self) -> int | None:
        """The most memory the sample held at once (None without a memory group)."""
        if self.memory is None:
            return None
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            if (self.memory / name).exists():
                return int((self.memory / name).read_text())
        return None

    def kill(self, timeout_s: float = 5.0) -> bool:
        """SIGKILL everything in the groups until they are empty; False when something was still there at timeout."""
        for group in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                _write(group / "cgroup.kill", 1, optional=True)
        deadline = time.monotonic() + timeout_s
        while True:
            members = {pid for group in self.dirs for pid in _members(group)}
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in members:
                self._kill_member(pid)
            time.sleep(0.002)

    def _kill_member(self, pid: int) -> None:
        kill_if(pid, self._is_member)

    def _is_member(self, pid: int) -> bool:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as fh:
            return any(line.rstrip("\n").endswith("/" + self.name) for line in fh)

    def close(self) -> bool:
        """Kill what is left and remove the groups; False when a group could not be emptied or removed."""
        emptied = self.kill()
        removed = True
        for group in reversed(self.dirs):
            deadline = time.monotonic() + 1.0
            while group.exists():
                try:
                    group.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        removed = False
                        break
                    time.sleep(0.005)
        self.dirs = []
        return emptied and removed


def _members(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def _write(path: Path, value: int, optional: bool = False) -> None:
    if optional and not path.exists():
        return
    path.write_text(str(value))
