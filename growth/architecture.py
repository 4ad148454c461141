"""Architecture facts as data: which tensors a checkpoint holds and which "space" each dimension lives in.

Each `growth/architectures/<model_type>.json` lists the tensor-name templates of one model family (the per-layer
ones contain `{layer}`), the dimension spaces of each tensor (`residual`, `ffn`, `q_heads`, `kv_heads`, `head_dim`,
`vocab`), the config keys whose product sizes each space, and which tensors write into the residual stream.
Operators act on spaces, not on names: width growth widens every `ffn` dimension, identity-initialised depth zeroes
every layer tensor that writes the residual stream; every step's config is checked against its tensor shapes.
Adding a Llama-layout family is a new JSON file, not a code branch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from growth.foundation.errors import PlanError

ARCH_DIR = Path(__file__).with_name("architectures")
LAYER = "{layer}"


@dataclass(frozen=True)
class TensorTemplate:
    name: str  # e.g. "model.layers.{layer}.mlp.down_proj.weight"
    dims: tuple[str, ...]  # the space of each dimension, outermost first
    optional: bool = False
    writes_residual: bool = False

    @property
    def per_layer(self) -> bool:
        return LAYER in self.name

    def format(self, layer: int | None = None) -> str:
        return self.name.replace(LAYER, str(layer)) if self.per_layer else self.name


@dataclass(frozen=True)
class ConfigKeys:
    """config.json keys that growth rewrites."""

    num_layers: str
    ffn_size: str
    tie_embeddings: str
    per_layer_lists: tuple[str, ...]  # lists with one entry per layer (reordered by depth growth)
    layer_counts: tuple[str, ...]  # ints counting a prefix of layers (e.g. Qwen's max_window_layers)


@dataclass(frozen=True)
class Architecture:
    model_type: str
    architectures: tuple[str, ...]
    keys: ConfigKeys
    embed: str
    lm_head: str
    pre_layers: tuple[TensorTemplate, ...]
    layer: tuple[TensorTemplate, ...]
    post_layers: tuple[TensorTemplate, ...]
    dim_sizes: tuple[tuple[str, tuple[str, ...]], ...]  # space -> config keys whose product is its size
    config_defaults: tuple[tuple[str, Any], ...]  # transformers' class defaults for keys a config.json may omit

    def match(self, name: str) -> tuple[TensorTemplate, int | None]:
        """The template a tensor name belongs to and its layer index (None outside the layers)."""
        for template, pattern in _patterns(self):
            m = pattern.fullmatch(name)
            if m:
                return template, (int(m.group(1)) if template.per_layer else None)
        raise PlanError(f"tensor {name!r} is not part of the {self.model_type} architecture "
                        f"({ARCH_DIR / (self.model_type + '.json')}); growth would not know how to transform it")

    def num_layers(self, config: dict[str, Any]) -> int:
        try:
            return int(config[self.keys.num_layers])
        except (KeyError, TypeError, ValueError):
            raise PlanError(f"config has no integer {self.keys.num_layers!r}") from None

    def ordered(self, names: list[str], num_layers: int) -> list[str]:
        """`names` in canonical order: pre-layer tensors, layer 0..L-1 in template order, then post-layer tensors."""
        present = set(names)
        order = [t.format() for t in self.pre_layers]
        order += [t.format(i) for i in range(num_layers) for t in self.layer]
        order += [t.format() for t in self.post_layers]
        return [n for n in order if n in present]

    def check_complete(self, names: list[str], num_layers: int) -> None:
        """Every required tensor of every layer is present, and every tensor belongs to a layer < num_layers."""
        present = set(names)
        for name in names:
            _, layer = self.match(name)
            if layer is not None and layer >= num_layers:
                raise PlanError(f"tensor {name!r} belongs to layer {layer}, but the config has {num_layers} layers")
        for t in self.pre_layers + self.post_layers:
            if not t.optional and t.format() not in present:
                raise PlanError(f"checkpoint lacks {t.format()!r}")
        for i in range(num_layers):
            for t in self.layer:
                if not t.optional and t.format(i) not in present:
                    raise PlanError(f"checkpoint lacks {t.format(i)!r}")


    def dim_size(self, space: str, config: dict[str, Any]) -> int:
        """The size of a space under `config`; a head_dim missing from both the config and the class defaults is
        hidden_size // num_attention_heads, as in transformers."""
        size = 1
        for key in dict(self.dim_sizes)[space]:
            value = config.get(key, dict(self.config_defaults).get(key))
            if value is None and key == "head_dim":
                value = config["hidden_size"] // config["num_attention_heads"]
            if not isinstance(value, int):
                raise PlanError(f"config has no integer {key!r} (needed for the {space} dimension)")
            size *= value
        return size

    def check_shapes(self, tensors: dict[str, tuple[tuple[int, ...], Any]], config: dict[str, Any],
                     what: str) -> None:
        """Every tensor's shape is the one its dimension spaces have under `config`."""
        for name, (shape, _) in tensors.items():
            template, _ = self.match(name)
            expected = tuple(self.dim_size(space, config) for space in template.dims)
            if tuple(shape) != expected:
                raise PlanError(f"{what}: {name} has shape {list(shape)}, but the config implies {list(expected)}")


def _template(raw: dict[str, Any]) -> TensorTemplate:
    return TensorTemplate(raw["name"], tuple(raw["dims"]), bool(raw.get("optional", False)),
                          bool(raw.get("writes_residual", False)))


@cache
def _patterns(arch: Architecture) -> tuple[tuple[TensorTemplate, re.Pattern[str]], ...]:
    out = []
    for t in arch.pre_layers + arch.layer + arch.post_layers:
        out.append((t, re.compile(re.escape(t.name).replace(re.escape(LAYER), r"(\d+)"))))
    return tuple(out)


def available() -> list[str]:
    return sorted(p.stem for p in ARCH_DIR.glob("*.json"))


@cache
def load(model_type: str) -> Architecture:
    """Parse `growth/architectures/<model_type>.json`; an unknown model_type is a PlanError naming what exists."""
    path = ARCH_DIR / f"{model_type}.json"
    if not path.is_file():
        raise PlanError(f"unknown architecture {model_type!r} (config.json model_type); growth supports "
                        f"{', '.join(available())}")
    raw = json.loads(path.read_text())
    c = raw["config"]
    keys = ConfigKeys(c["num_layers"], c["ffn_size"], c["tie_embeddings"], tuple(c["per_layer_lists"]),
                      tuple(c["layer_counts"]))
    return Architecture(raw["model_type"], tuple(raw["architectures"]), keys, raw["embed"], raw["lm_head"],
                        tuple(map(_template, raw["pre_layers"])), tuple(map(_template, raw["layer"])),
                        tuple(map(_template, raw["post_layers"])),
                        tuple((space, tuple(keys)) for space, keys in raw["dim_sizes"].items()),
                        tuple(raw["config_defaults"].items()))


def for_config(config: dict[str, Any]) -> Architecture:
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise PlanError("config.json has no model_type")
    return load(model_type)
