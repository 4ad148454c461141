"""Resolve a hub dataset (path, config) to the split files of a local mirror.

A mirror is laid out `<dataset>/<config>/<split>.jsonl[.gz]`. `<dataset>` is the hub name without its owner
(`allenai/ai2_arc` -> `ai2_arc`), or the full `owner/name`, or a rule from `mirror_aliases.yaml` for hub names
that a mirror spells differently (`hails/agieval-lsat-ar` -> `agieval/lsat-ar`). A missing config is `default`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from growth.foundation.config import load_yaml
from growth.foundation.errors import DataError

_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


@cache
def _aliases() -> dict[str, dict[str, str]]:
    return load_yaml(Path(__file__).with_name("mirror_aliases.yaml"))


def dataset_dirs(root: Path, dataset: str, config: str | None) -> list[Path]:
    """Candidate folders for (dataset, config), most specific first."""
    cfg = config or "default"
    aliases = _aliases()
    found = [aliases["datasets"][dataset].format(config=cfg)] if dataset in aliases["datasets"] else []
    found += [t.format(rest=dataset[len(p):], config=cfg) for p, t in aliases["prefixes"].items()
              if dataset.startswith(p)]
    found += [f"{dataset}/{cfg}", f"{dataset.split('/')[-1]}/{cfg}"]
    return [root / f for f in dict.fromkeys(found)]


def resolve(root: Path, dataset: str, config: str | None, splits: list[str] | None = None) -> dict[str, Path]:
    """Map split names to local files; raise `DataError` naming the missing folder or split file."""
    if not root.is_dir():
        raise DataError(f"data mirror {root} does not exist")
    for folder in dataset_dirs(root, dataset, config):
        if folder.is_dir():
            found = {}
            for f in sorted(folder.iterdir()):
                for suffix in _SUFFIXES:
                    if f.name.endswith(suffix):
                        found[f.name[: -len(suffix)]] = f
            missing = [s for s in (splits or []) if s not in found]
            if missing:
                raise DataError(f"data mirror is missing split {missing[0]!r} of {dataset} ({config or 'default'}): "
                                f"expected {folder / (missing[0] + '.jsonl')}")
            if not found:
                raise DataError(f"data mirror folder {folder} holds no split files")
            return found
    tried = ", ".join(str(p) for p in dataset_dirs(root, dataset, config))
    raise DataError(f"data mirror has no {dataset} ({config or 'default'}); looked for {tried}")
