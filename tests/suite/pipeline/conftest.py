"""The README's default run, made once per session as a new user makes it, for the tests that read it back."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@dataclass
class UserRun:
    """`growbench pipeline --config tiny` run in `folder` (fresh home, no mirror, no hub) and the shell it had."""

    folder: Path
    env: dict[str, str]
    console: str
    returncode: int


def user_env(tmp: Path) -> dict[str, str]:
    """A new user's environment: own home and caches, offline, no GROWBENCH_* settings, `growbench` on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWBENCH_")}
    env.update(HOME=str(tmp / "home"), HF_HOME=str(tmp / "hf"), XDG_CACHE_HOME=str(tmp / "cache"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> UserRun:
    tmp = tmp_path_factory.mktemp("readme")
    folder = tmp / "user"
    folder.mkdir()
    env = user_env(tmp)
    proc = subprocess.run([sys.executable, "-m", "suite.cli", "pipeline", "--config", "tiny"], cwd=folder, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
    return UserRun(folder, env, proc.stdout.decode(), proc.returncode)
