"""Capture sends everything libraries print to the log file, at the file-descriptor level, and only there.

The script below prints the ways lm-eval, transformers, tqdm, vLLM and git do: a logging handler bound to stderr
before the capture, print, a tqdm bar, raw writes to fds 1 and 2 (C code), and a child process. It runs in its own
process because capture rebinds the process's descriptors.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import logging, os, subprocess, sys
from tqdm import tqdm
from growth.foundation.terminal import capture

logging.basicConfig(format="LOG %(message)s")  # a handler bound to sys.stderr before the capture, as lm-eval's
log, verbose = sys.argv[1], sys.argv[2] == "1"
print("before")
with capture(log, verbose=verbose, header="[step]") as term:
    term.say("ours: running")
    print("chatter: print")
    logging.getLogger("lm_eval").warning("chatter: logging")
    for _ in tqdm(range(3), desc="chatter: tqdm"):
        pass
    os.write(1, b"chatter: fd1\n")
    os.write(2, b"chatter: fd2\n")
    subprocess.run([sys.executable, "-c", "print('chatter: child')"], check=True)
    with capture(log, verbose=verbose, header="[inner]") as inner:
        inner.say("ours: nested")
        print("chatter: nested")
    with term.progress() as bar:
        bar.add_task("work", total=1)
    term.say("ours: done")
try:
    with capture(log):
        raise KeyError("boom")
except KeyError:
    pass
print("after")
"""


def run(tmp_path: Path, verbose: bool) -> tuple[str, str, str]:
    log = tmp_path / "run.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), "1" if verbose else "0"], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr, log.read_text() if log.exists() else ""


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

