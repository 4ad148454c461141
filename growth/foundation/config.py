"""YAML config files -> dataclasses: the one loader behind plans, train configs, mixtures, suites, strategies,
pipelines and reported sets.

Loading is: read the file, require a mapping, reject unknown keys (naming the allowed ones), name missing keys, build
the dataclass, recursing into nested dataclass fields and lists of them; cross-field checks live in each dataclass's
`__post_init__` and raise `ConfigError` themselves, naming the field to change.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from growth.foundation.errors import ConfigError

T = TypeVar("T")


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable or invalid files are one-line `ConfigError`s."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path} ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping at the top level."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def merged(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`, nested mappings merged key by key; None values leave `base` as it is (an option the
    user did not give). Precedence: defaults < YAML < overrides."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        out[key] = merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) \
            else value
    return out


def from_mapping(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping (None: all defaults), rejecting unknown keys and naming missing ones."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(fields)}")
    missing = [n for n, f in fields.items() if n not in raw and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    return cls(**raw)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        plain = [a for a in inner if a in (int, float, str, bool)]
        if len(plain) > 1 and type(value) in plain:  # int | str: a value of either type is as it should be
            return value
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return origin(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def build(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`, converting nested sections; unknown or missing keys are `ConfigError`s."""
    hints = typing.get_type_hints(cls)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    converted = {k: _convert(hints[k], v, f"{where}.{k}") if k in hints else v for k, v in data.items()}
    return from_mapping(cls, converted, where)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string under it) of dataclass `cls` and its dataclass bases, whitespace folded:
    the one text that documents a field in the source and as its --help."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr) \
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def as_dict(obj: Any) -> dict[str, Any]:
    """The resolved config as plain data, for training.json and the run folder."""
    return dataclasses.asdict(obj)
