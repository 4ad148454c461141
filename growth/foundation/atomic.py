"""Atomic publishing: outputs appear whole or not at all.

Everything growbench writes (checkpoints, recipes, reports, leaderboards) is written under a temporary name beside
its destination, fsynced, then renamed. A crash leaves the destination absent or exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from growth.foundation.errors import GrowbenchError

_TMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    if path.is_dir():
        raise GrowbenchError(f"{path} is a folder; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (a staging or temporary file of a dead one is stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def require_new(out: str | Path, force: bool) -> None:
    """Refuse an existing output unless `force`: checked before the expensive part, and again at publish."""
    if Path(out).exists() and not force:
        raise GrowbenchError(f"output {Path(out).absolute()} already exists; pass --force to replace it")


class StagingDir:
    """A temporary directory beside `out` that becomes `out` on `publish()`.

    Use as a context manager: leaving the block without publishing (an exception) removes the staging folder.
    Staging folders left by killed processes are removed when the next one for the same `out` is created.
    """

    def __init__(self, out: str | Path, *, force: bool = False) -> None:
        self.out = Path(out).absolute()
        self.force = force
        require_new(self.out, force)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self.path = self.out.parent / f".{self.out.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self.published = False

    def _remove_stale(self) -> None:
        prefix = f".{self.out.name}{_TMP_MARK}"
        for entry in self.out.parent.glob(prefix + "*"):
            pid = entry.name[len(prefix):].split("-")[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)

    def publish(self) -> Path:
        """fsync every file, then rename the staging folder onto `out` (replacing it only with force)."""
        for root, _, files in os.walk(self.path):
            for name in files:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_dir(self.path)
        old = None
        if self.out.exists():
            if not self.force:
                raise GrowbenchError(f"output {self.out} appeared while writing; pass --force to replace it")
            old = self.out.parent / f".{self.out.name}{_TMP_MARK}{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
            os.replace(self.out, old)
        os.replace(self.path, self.out)
        fsync_dir(self.out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        self.published = True
        return self.out

    def cleanup(self) -> None:
        if not self.published:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "StagingDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
