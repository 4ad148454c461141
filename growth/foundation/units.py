"""Byte sizes as users write them ('80GiB', '512MiB', '1.5TB') and as growbench prints them ('1.23 GiB')."""

from __future__ import annotations

import re

from growth.foundation.errors import ConfigError

GiB = 2**30
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'80GiB', '80GB', '512MiB', '1.5TB' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"memory size {text!r} is not a number with a unit like 80GiB, 80GB or 512MiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def gib(n: float) -> str:
    """Bytes as '1.23 GiB'."""
    return f"{n / GiB:.2f} GiB"
