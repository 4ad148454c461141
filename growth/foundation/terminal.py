"""What reaches the user's terminal: growbench's own lines and one progress display at a time, while everything
third-party libraries print (lm-eval, transformers, datasets, vLLM, their tqdm bars and child processes) goes to a
log file.

    with capture(workdir / "pipeline.log", header="[sweep]") as term:   # verbose=True captures nothing (-v)
        term.say("[sweep] running")
        with term.progress() as bar: ...

Capture works on file descriptors 1 and 2, not on Python objects, because that is the one level every source
shares: lm-eval and transformers bind logging handlers to `sys.stderr` at import, tqdm writes to `sys.stderr`, lm-eval
runs `git` in a subprocess, and vLLM's engine runs in a child process that inherits the descriptors. No logger,
environment variable or library setting is changed, so nothing outlives the block; the descriptors are restored on
the way out, also on error. growbench reaches the terminal through duplicates of the original descriptors, taken
before the redirect.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.console import Console

_current: Terminal | None = None


@dataclass
class Terminal:
    """The user's stdout (growbench's lines) and stderr (progress displays); `log` is where the rest goes."""

    out: IO[str]
    err: Console
    log: Path | None = None

    def say(self, line: str) -> None:
        """One plain line on stdout: no markup, never wrapped (paths stay copyable)."""
        self.out.write(line + "\n")
        self.out.flush()

    def progress(self, enabled: bool = True) -> Any:
        """A rich progress display with ETA, drawn only on a real terminal (a pipe or CI log gets the summary
        lines alone), and cleared when done so that only the step's summary line stays. Inside `capture` it leaves
        sys.stdout and sys.stderr alone: rich's redirection would carry library output around the capture onto the
        terminal; outside it, that redirection keeps library output above the display instead of through it."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=self.err, transient=True,
                        disable=not (enabled and self.err.is_terminal), redirect_stdout=self.log is None,
                        redirect_stderr=self.log is None)


def shown(path: str | Path) -> str:
    """A path as the console shows it: relative to the working directory when it lies below it (shorter, and as
    copyable from the shell the user typed in), else as given."""
    try:
        return str(Path(path).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def terminal() -> Terminal:
    """The terminal in effect: inside `capture`, the user's real one; elsewhere the current stdout and stderr."""
    return _current or Terminal(sys.stdout, Console(stderr=True))


def _own_stream(stream: Any, fd: int) -> tuple[Any, bool]:
    """(a stream to the terminal that survives the redirect of `fd`, whether it must be closed afterwards)."""
    try:
        backed = stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # an in-memory stream (a test runner): not redirected, keep it
        backed = False
    if not backed:
        return stream, False
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=encoding, errors="replace"), True


@contextmanager
def capture(log: str | Path, *, verbose: bool = False, header: str = "") -> Iterator[Terminal]:
    """Send file descriptors 1 and 2 to `log` (appended) for the block; yields the user's real terminal.

    `verbose` (growbench -v) captures nothing. Inside another capture the outer one already routes the output and
    this one adds only its header to the outer log."""
    global _current
    if verbose:
        yield terminal()
        return
    outer = _current
    path = Path(log) if outer is None else outer.log or Path(log)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    if header:
        with open(path, "a") as f:
            f.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {header} =====\n")
    if outer is not None:
        yield outer
        return
    out, close_out = _own_stream(sys.stdout, 1)
    err, close_err = _own_stream(sys.stderr, 2)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for fd in (1, 2):
            os.dup2(target, fd)
    finally:
        os.close(target)
    _current = Terminal(out, Console(file=err), path)
    try:
        yield _current
    finally:
        sys.stdout.flush()  # text that third parties left in Python's buffers belongs to the log
        sys.stderr.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)
        _current = None
        for stream, own in ((out, close_out), (err, close_err)):
            if own:
                stream.close()
