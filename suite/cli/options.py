"""Options that several commands share, declared once with their help text, and the flags generated from a typed
options dataclass (`takes`): a field becomes a flag whose --help is the field's docstring, and the command receives
the dataclass whole, as torchtitan turns its config tree into command-line overrides.

The few flags a command has are for what changes between runs (paths, the suite, the database); experiment knobs
belong in YAML (suites, train configs, pipelines).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from growth.foundation.config import field_docs
from growth.foundation.errors import ConfigError
from suite.eval.options import EvalOptions

UNIONS = (typing.Union, types.UnionType)


def out_file(path: Path, flag: str, *suffixes: str) -> Path:
    """A file a command will write, refused before any work when it is a folder or its suffix is not one of
    `suffixes` (the content written is of that kind whatever the name says)."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name ending in {' or '.join(suffixes)}")
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {path}: the file written is {suffixes[0].lstrip('.').upper()}; give a name "
                          f"ending in {' or '.join(suffixes)}")
    return path


def benchmark_keys(benchmarks: list[str] | None) -> list[str]:
    """The keys given to BENCHMARKS, repeated or comma-separated, in order (empty: none given)."""
    return [k.strip() for item in benchmarks or [] for k in item.split(",") if k.strip()]


_EVAL_DOCS = field_docs(EvalOptions)
DB = typer.Option(None, "--db", help="DuckDB results file (default $GROWBENCH_DB or runs/growbench.duckdb).")
DATA_DIR = typer.Option(None, "--data-dir", help=_EVAL_DOCS["data_dir"])
SUITE = typer.Option(None, "--suite", help="Suite whose runs count (a name or suite YAML); default: the only suite "
                     "the store (or the models or run named) holds finished runs in.")
BENCHMARKS = typer.Option(None, "--benchmarks", "-b", help=_EVAL_DOCS["benchmarks"])
BACKEND = typer.Option(None, "--backend", help=_EVAL_DOCS["backend"])
CODE = typer.Option(False, "--allow-code-execution", help=_EVAL_DOCS["allow_code_execution"])
PICK = typer.Option("latest", "--pick", help="Which finished run counts per model and benchmark: latest (the most "
                    "complete, then the newest) or best.")
FORCE = typer.Option(False, "--force", help="Replace the output if it exists.")


@dataclass(frozen=True)
class Flag:
    """How one field reads on the command line where its own name and type do not say it."""

    names: tuple[str, ...] = ()
    """Flag names (default: --field-name)."""
    type: Any = None
    """What the command line parses (default: the field's type)."""
    parse: Callable[[Any], Any] | None = None
    """The parsed value -> the field's value; such a flag defaults to None (not given), which `parse` reads."""
    into: str | None = None
    """A dict field this flag sets one key of (the key: the flag's own name), when the flag is given."""
    help: str | None = None
    """Help text for a flag that is no field of the dataclass (`into`)."""


def takes(cls: type, param: str, *, skip: tuple[str, ...] = (), flags: Mapping[str, Flag] | None = None
          ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command that takes `param: cls`: the command line gets one flag per field of `cls` (but `skip`;
    `flags` adjusts names, types and parsing, or adds flags `into` a dict field), each with its field's docstring
    as --help, and the command gets the `cls` they build."""
    flags = flags or {}
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    extra = [name for name, flag in flags.items() if flag.into is not None]
    generated = []
    for f in fields:
        flag = flags.get(f.name, Flag())
        default = None if f.default is dataclasses.MISSING or flag.parse else f.default
        generated.append(_param(f.name, flag.type or hints[f.name], default, flag, docs[f.name]))
    generated += [_param(name, flags[name].type, None, flags[name], flags[name].help or "") for name in extra]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own_hints = typing.get_type_hints(command)
        own = [p.replace(annotation=own_hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(command).parameters.values() if p.name != param]

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            values: dict[str, Any] = {}
            for f in fields:
                value = given.pop(f.name)
                parse = flags.get(f.name, Flag()).parse
                values[f.name] = parse(value) if parse else value
            for name in extra:
                value = given.pop(name)
                if value is not None:
                    into = flags[name].into
                    values[into] = {**values[into], name: value}
            return command(**given, **{param: cls(**values)})

        params = own + generated
        run.__signature__ = inspect.Signature(params)  # typer reads the flags from here
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate


def _param(name: str, annotation: Any, default: Any, flag: Flag, help: str) -> inspect.Parameter:
    names = flag.names or ("--" + name.replace("_", "-"),)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=typer.Option(default, *names, help=help))


def optional(tp: Any) -> Any:
    """`tp` or None: a flag's type when leaving it out means "as configured elsewhere"."""
    inner = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in UNIONS else [tp]
    return Optional[inner[0]]
