"""Capture sends everything libraries print to the log file, at the file-descriptor level, and only there.

The script below prints the ways lm-eval, transformers, tqdm, vLLM and git do: a logging handler bound to stderr
before the capture, print, a tqdm bar, raw writes to fds 1 and 2 (C code), and a child process. It runs in its own
process because capture rebinds the process's descriptors.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import logging, os, subprocess, sys
from tqdm import tqdm
from growth.foundation.terminal import capture

logging.basicConfig(format="LOG %(message)s")  # a handler bound to sys.stderr before the capture, as lm-eval's
log, verbose = sys.argv[1], sys.argv[2] == "1"
print("before")
with capture(log, verbose=verbose, header="[step]") as term:
    term.say("ours: running")
    with term.progress() as bar:  # live on a terminal while the libraries print, as in a sweep
        task = bar.add_task("ours: progress", total=2)
        print("chatter: print")
        logging.getLogger("lm_eval").warning("chatter: logging")
        for _ in tqdm(range(3), desc="chatter: tqdm"):
            pass
        os.write(1, b"chatter: fd1\n")
        os.write(2, b"chatter: fd2\n")
        subprocess.run([sys.executable, "-c", "print('chatter: child')"], check=True)
        bar.advance(task)
        with capture(log, verbose=verbose, header="[inner]") as inner:
            inner.say("ours: nested")
            print("chatter: nested")
        bar.advance(task)
    term.say("ours: done")
try:
    with capture(log):
        raise KeyError("boom")
except KeyError:
    pass
print("after")
"""


def command(tmp_path: Path, verbose: bool) -> list[str]:
    return [sys.executable, "-c", SCRIPT, str(tmp_path / "run.log"), "1" if verbose else "0"]


def run(tmp_path: Path, verbose: bool) -> tuple[str, str, str]:
    proc = subprocess.run(command(tmp_path, verbose), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    log = tmp_path / "run.log"
    return proc.stdout, proc.stderr, log.read_text() if log.exists() else ""


def run_on_a_terminal(tmp_path: Path) -> str:
    """The script with stdout and stderr on a pseudo-terminal, so the progress display is live; what it showed."""
    main, child = pty.openpty()
    proc = subprocess.Popen(command(tmp_path, False), stdin=subprocess.DEVNULL, stdout=child, stderr=child, cwd=REPO,
                            env={**os.environ, "COLUMNS": "100"})
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert proc.wait(timeout=120) == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


CHATTER = ["chatter: print", "chatter: logging", "chatter: tqdm", "chatter: fd1", "chatter: fd2", "chatter: child",
           "chatter: nested"]


def test_library_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path: Path) -> None:
    out, err, log = run(tmp_path, verbose=False)
    # "after" comes after a capture left by an exception: the descriptors were restored.
    assert out.splitlines() == ["before", "ours: running", "ours: nested", "ours: done", "after"]
    assert err == ""  # not even the progress display: stderr is a pipe, not a terminal
    for line in CHATTER:
        assert line in log, line
    assert "[step]" in log and "[inner]" in log and "ours:" not in log


def test_verbose_captures_nothing(tmp_path: Path) -> None:
    out, err, log = run(tmp_path, verbose=True)
    for line in CHATTER:
        assert line in out + err, line
    assert log == ""



def test_a_live_progress_display_does_not_carry_library_output_around_the_capture(tmp_path: Path) -> None:
    shown = run_on_a_terminal(tmp_path)
    assert "ours: progress" in shown and "ETA" in shown  # the display was drawn
    assert "ours: running" in shown and "ours: done" in shown
    assert "chatter" not in shown, shown
    log = (tmp_path / "run.log").read_text()
    for line in CHATTER:
        assert line in log, line
