"""One small registry shape for every plug-in kind: growth operators, merge methods, benchmarks, backends, strategies.

Names map to objects (or lazy `module:attr` strings, so heavy backends import only when used); duplicates are
rejected; unknown names get a "did you mean" and the list of what exists.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable, Generic, Iterator, TypeVar

from growth.foundation.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T | str] = {}

    def register(self, name: str, target: T | str | None = None) -> Callable[[T], T] | None:
        """Register `target` under `name`, or return a decorator when `target` is omitted."""
        if target is not None:
            self._add(name, target)
            return None

        def decorator(obj: T) -> T:
            self._add(name, obj)
            return obj

        return decorator

    def _add(self, name: str, target: T | str) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = target

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(self.unknown_message(name))
        target = self._items[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._items[name] = target
        return target  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._items))}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

