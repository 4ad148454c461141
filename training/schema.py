"""YAML -> dataclasses, rejecting unknown keys: the one loader behind train configs and mixtures.

Each config section is a dataclass defined next to the code that uses it; `build` fills one from a mapping,
recursing into nested dataclass fields and lists of them, and names the offending key path on any mistake.
Cross-field checks live in each dataclass's `__post_init__` and raise `ConfigError` themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from growth.config import from_mapping
from growth.errors import ConfigError

T = TypeVar("T")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
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


def as_dict(obj: Any) -> dict[str, Any]:
    """The resolved config as plain data, for training.json and the run folder."""
    return dataclasses.asdict(obj)
