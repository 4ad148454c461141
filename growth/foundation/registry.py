"""One registry shape for everything growbench looks up by name, with one "did you mean".

Two kinds of things are looked up by name:
- plug-ins (growth operators, merge methods, evaluator backends, selection strategies): a `Registry` maps each name
  to an object or a lazy `module:attr` string, so heavy backends import only when used; duplicates are rejected;
- shipped files (growth plans, seed configs, train configs, mixtures, suites, pipelines, role recipes, reported
  sets): a `Shipped` registry maps each file's stem in its package folder (and in extra folders a user names in an
  environment variable, searched first) to its path, and also accepts a path to any file of that kind.
Unknown names get the same answer everywhere: the closest names ("did you mean") and the list of what exists.
"""

from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from growth.foundation.errors import ConfigError

T = TypeVar("T")


def suggestions(name: str, names: Iterable[str]) -> list[str]:
    """Up to three known names close to `name`: those it is a prefix of, then difflib's closest."""
    names = list(names)
    return list(dict.fromkeys([n for n in names if n.startswith(name)] +
                              difflib.get_close_matches(name, names, n=3, cutoff=0.5)))[:3]


def unknown_message(kind: str, name: str, names: Iterable[str], *, where: str = "", extra: str = "") -> str:
    """The one "unknown X" message: what was asked (and `where`), the closest names, every available name."""
    names = sorted(names)
    close = suggestions(name, names)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}{where}.{hint} Available: {', '.join(names) or 'none'}{extra}"


class Registry(Generic[T]):
    """Plug-ins by name: objects, or `module:attr` strings imported on first use."""

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
            raise ConfigError(unknown_message(self.kind, name, self._items))
        target = self._items[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._items[name] = target
        return target  # type: ignore[return-value]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class Shipped:
    """Shipped data files of one kind: `<folder>/<name><suffix>`, found by name, or any such file given by path.

    `env` names an environment variable holding extra folders (os.pathsep-separated) searched before the package
    folder, so users keep their own files outside the installed package.
    """

    def __init__(self, kind: str, folder: Path, *, suffix: str = ".yaml", env: str | None = None) -> None:
        self.kind = kind
        self.folder = folder
        self.suffix = suffix
        self.env = env

    def folders(self) -> list[Path]:
        extra = [Path(p) for p in os.environ.get(self.env, "").split(os.pathsep) if p] if self.env else []
        return extra + [self.folder]

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for folder in reversed(self.folders()):  # earlier folders win
            if folder.is_dir():
                found.update({p.name[: -len(self.suffix)]: p for p in folder.glob(f"*{self.suffix}")})
        return found

    def names(self) -> list[str]:
        return sorted(self._files())

    def resolve(self, name_or_path: str | Path) -> Path:
        """The file for a shipped name, or the given path; a missing file or an unknown name is a ConfigError."""
        text = str(name_or_path)
        path = Path(text).expanduser()
        if path.is_file():
            return path
        if "/" in text or os.sep in text or text.endswith((".yaml", ".yml", ".json")):
            raise ConfigError(f"{self.kind} file {path} does not exist")
        files = self._files()
        if text not in files:
            where = ", ".join(map(str, self.folders()))
            raise ConfigError(unknown_message(self.kind, text, files, extra=f" (in {where}; or give a file path)"))
        return files[text]
