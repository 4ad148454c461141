"""Where a command sends what the libraries it loads print (lm-eval, transformers, datasets, vLLM, torch): the log
file beside the results database, `<db folder>/growbench.log`, appended, one header per command; `growbench -v`
shows it instead. This is the pipeline's capture (growth/foundation/terminal.py) for the single commands.

    with library_output("eval", db) as term:   # term.say(...) reaches the user's stdout
        results = evaluate(...)
    console.print(table)                       # after the block: stdout is the user's again

When the libraries printed anything (or the command failed after they did), one short line on stderr says where it
went; a user mistake found before anything loads stays the one line `main()` prints.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from growth.foundation.settings import db_path
from growth.foundation.terminal import Terminal, capture, terminal
from suite.cli.console import err_console

LOG_NAME = "growbench.log"


_verbose = False


def set_verbose(value: bool) -> None:
    """`growbench -v` (the root callback): library output is shown instead of logged."""
    global _verbose
    _verbose = value


def verbose() -> bool:
    """Whether `growbench -v` was given."""
    return _verbose


def log_path(db: str | Path | None = None) -> Path:
    """The commands' library log: beside the results database in effect (--db, $GROWBENCH_DB or the default)."""
    return db_path(db).parent / LOG_NAME


@contextmanager
def library_output(command: str, db: str | Path | None = None) -> Iterator[Terminal]:
    """Capture library output for the block into the log (nothing with -v); yields the user's terminal."""
    if verbose():
        yield terminal()
        return
    log = log_path(db)
    header = f"[{command}] growbench {' '.join(sys.argv[1:])}"
    failed, start = False, None
    try:
        with capture(log, header=header) as term:
            start = log.stat().st_size
            yield term
    except BaseException:
        failed = True
        raise
    finally:
        if start is not None and log.stat().st_size > start:
            err_console.print(f"library output {'of the failed command ' if failed else ''}is in {log} "
                              "(growbench -v shows it)", markup=False, highlight=False, soft_wrap=True)
