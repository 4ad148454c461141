"""YAML config files -> dataclasses, the one loader behind plans, train configs, mixtures, strategies and pipelines.

Loading is: read the file, require a mapping, reject unknown keys (naming the allowed ones), name missing keys, build
the dataclass; cross-field checks live in each dataclass's `__post_init__`. It lives in `growth/`, the bottom of the
dependency order, so every package can use it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import yaml

from growth.errors import ConfigError


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
