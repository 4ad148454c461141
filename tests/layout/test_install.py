"""A non-editable install carries everything it needs: `pip install .` into a fresh venv, run from another folder.

The venv is created without system site packages and growbench is installed into it from a copy of the source tree,
so the only growbench code it can import is what the wheel installed (package data included). Its third-party
dependencies (torch, duckdb, ...) come from this test's environment through a path entry in a .pth file: such an
entry only extends sys.path, it does not run the editable install's own .pth hook, so the checkout stays invisible.
Installing the dependencies again would download gigabytes and prove nothing about growbench's packaging.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_installed_wheel_runs_the_reported_leaderboard(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", ".mergekit-venv", "runs", "build",
                                                             "*.egg-info", "__pycache__", ".*_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "growbench-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-build-isolation", "--no-index", "--quiet", str(src)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    shutil.rmtree(src)  # nothing may refer back to the source tree

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("GROWBENCH_")}
    env["HOME"] = str(tmp_path)
    where = subprocess.run([python, "-c", "import results, suite, growth; print(results.__file__, suite.__file__, "
                            "growth.__file__)"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(purelib) for path in where.stdout.split()), where.stdout

    board = subprocess.run([venv / "bin" / "growbench", "leaderboard", "--reported", "openseek-mid-v1"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert board.returncode == 0, board.stderr
    assert "| **Avg All** | 61.88 |" in board.stdout and "MMLU-Pro (5-shot CoT)" in board.stdout
    plan = subprocess.run([venv / "bin" / "growbench", "pipeline", "--config", "openseek-mid-v1", "--dry-run"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert plan.returncode == 0, plan.stderr
    assert "4,022,468,096 -> width-expanded 7,101,021,696 -> stacked 10,613,858,816" in plan.stdout
    assert not (tmp_path / "runs").exists()  # reading shipped data writes nothing
