"""The README is the spec of the command line: every command of its first-hour block runs, exactly as shown, on what
`growbench pipeline --config tiny` made, and every row of its command table names a real command, real flags and
the command's required arguments, so the table cannot drift from the CLI."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import typer

from suite.cli.app import app

REPO = Path(__file__).resolve().parents[3]
README = (REPO / "README.md").read_text()
FIRST_HOUR = "## Your first hour on what the tiny pipeline made"


def first_hour_commands() -> list[str]:
    """The shell lines of the first-hour section's bash block (continuations joined, comments dropped)."""
    section = README[README.index(FIRST_HOUR):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [line for line in (re.sub(r"\s+#.*$", "", raw).strip() for raw in lines)
            if line and not line.startswith("#")]


def table_commands() -> list[str]:
    """Every `growbench ...` code span of the README's command table, alternatives (`a \\| b`) unescaped."""
    section = README[README.index("## Commands"):]
    section = section[:section.index("\n## ", 1)]
    spans = [span for line in section.splitlines() if line.startswith("| `growbench")
             for span in re.findall(r"`(growbench [^`]*)`", line.split(" | ")[0])]
    return [span.replace("\\|", "|") for span in spans]


def command_of(words: list[str]) -> tuple[list[str], Any]:
    """The command a line names (`plot run`, `data prepare`, ...) and its click object (typer's own click)."""
    command = typer.main.get_command(app)
    path = []
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    return path, command


def flags(command: Any) -> set[str]:
    return {name for p in command.params for name in (*p.opts, *p.secondary_opts)}


def test_every_row_of_the_table_is_a_real_command_with_its_required_arguments() -> None:
    spans = table_commands()
    assert len(spans) >= 22, spans
    for span in spans:
        words = [w for w in span.replace("[", " ").replace("]", " ").split()[1:] if w not in ("|", "...")]
        path, command = command_of(words)
        assert path and not hasattr(command, "commands"), f"{span!r} names no command"
        options = {name: p for p in command.params for name in (*p.opts, *p.secondary_opts)}
        given = [w for w in words if w.startswith("--")]
        unknown = [f for f in given if f not in options]
        assert not unknown, f"{span!r}: `growbench {' '.join(path)}` has no {unknown}"
        for p in command.params:
            if p.param_type_name == "option" and p.required:
                assert set(p.opts) & set(given), f"{span!r} leaves out the required {p.opts[0]}"
        positional, rest = [], words[len(path):]
        for i, word in enumerate(rest):
            takes_value = i and rest[i - 1] in options and not options[rest[i - 1]].is_flag
            if not word.startswith("-") and not takes_value:
                positional.append(word)
        needed = [p.name for p in command.params if p.param_type_name == "argument" and p.required]
        assert len(positional) >= len(needed), f"{span!r} shows {positional} for the arguments {needed}"


def test_every_command_of_the_table_has_a_first_hour_example() -> None:
    shown = {" ".join(command_of(shlex.split(line)[1:])[0]) for line in first_hour_commands()
             if line.startswith("growbench ")}
    for span in table_commands():
        path = " ".join(command_of(span.replace("|", " ").split()[1:])[0])
        assert path in shown, f"the first-hour block has no `growbench {path}` example"


@pytest.mark.slow
def test_the_first_hour_runs_on_what_the_tiny_pipeline_made(readme_run) -> None:
    """Each line in the user's folder, in order, through a shell with `growbench` on PATH: exit 0, no traceback."""
    assert readme_run.returncode == 0, readme_run.console[-3000:]
    timings = []
    for line in first_hour_commands():
        start = time.monotonic()
        proc = subprocess.run(["bash", "-c", line], cwd=readme_run.folder, env=readme_run.env, capture_output=True,
                              text=True, timeout=900)
        timings.append((round(time.monotonic() - start, 1), line))
        assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stdout + proc.stderr, line
    print("\n".join(f"{t:>6} s  {line}" for t, line in timings))
