"""Commands as quiet as the pipeline: library output to `<db folder>/growbench.log` (-v shows it), a user mistake
still one line on stderr, and tables whole when stdout is not a terminal. Each runs in its own process, since the
capture rebinds the process's file descriptors and the console's width depends on what stdout is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from results_store import add_model, add_run

from suite.store import Store

REPO = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import os, sys
from suite.cli.app import app
from suite.cli.library_log import library_output

db, mode = sys.argv[1], sys.argv[2]


@app.command("chatter")
def chatter() -> None:
    try:
        with library_output("eval", db) as term:
            print("chatter: print")
            os.write(2, b"chatter: fd2\n")
            term.say("ours: running")
            if mode == "fail":
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    print("ours: done")


app(["-v", "chatter"] if mode == "verbose" else ["chatter"], standalone_mode=False)
"""


def script(tmp_path: Path, mode: str) -> tuple[str, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    db = tmp_path / "store" / "results.duckdb"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(db), mode], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    log = db.parent / "growbench.log"
    return proc.stdout, proc.stderr, log.read_text() if log.exists() else ""


def test_library_output_goes_to_the_log_beside_the_store(tmp_path: Path) -> None:
    out, err, log = script(tmp_path, "quiet")
    assert out == "ours: running\nours: done\n"
    assert "chatter: print" in log and "chatter: fd2" in log and "[eval]" in log and "ours" not in log
    log_path = tmp_path / "store" / "growbench.log"
    assert err == f"library output is in {log_path} (growbench -v shows it)\n"
    _, err, log_again = script(tmp_path, "fail")
    assert log_again.startswith(log) and log_again.count("[eval]") == 2  # appended
    assert err == f"library output of the failed command is in {log_path} (growbench -v shows it)\n"


def test_verbose_shows_library_output(tmp_path: Path) -> None:
    out, err, log = script(tmp_path, "verbose")
    assert out == "chatter: print\nours: running\nours: done\n" and err == "chatter: fd2\n" and log == ""


def growbench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "suite.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def test_a_user_mistake_stays_one_line(tmp_path: Path) -> None:
    """Nothing loaded, nothing logged: the error is the only line, and no note about the log."""
    proc = growbench(tmp_path, "eval", str(tmp_path / "absent"), "--db", str(tmp_path / "r.duckdb"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: ")


def test_tables_are_whole_off_a_terminal(tmp_path: Path, tiny_model: Path) -> None:
    """regress's table is wider than 80 columns: piped, no cell is cut and no row or title wraps."""
    store = Store(tmp_path / "results.duckdb")
    long_a, long_b = "a-model-with-a-long-descriptive-name-" * 3, "the-reference-model-also-named-at-length-" * 3
    a, b = add_model(store, tiny_model, tmp_path, long_a), add_model(store, tiny_model, tmp_path, long_b)
    for model, value in ((a, 0.45), (b, 0.52)):
        add_run(store, model, "hellaswag", value, 0.01, shots=5, metric="acc_norm")
    proc = growbench(tmp_path, "regress", "--model", long_a, "--against", f"model:{long_b}", "--suite",
                     "openseek-mid-v1", "--db", str(store.path))
    assert proc.returncode == 1, proc.stderr  # -7 points: outside tolerance
    lines = proc.stdout.splitlines()
    assert "…" not in proc.stdout
    assert any(long_a in line and long_b in line for line in lines)  # the title on one line
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert len({len(line) for line in table}) == 1 and len(table[0]) > 80
    assert len([line for line in table if "hellaswag" in line]) == 1 and len(table) == 5
