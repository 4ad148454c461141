"""Streaming checkpoint I/O for Hugging Face safetensors checkpoints, used by growth, merge and training exports.

Reading parses only the safetensors headers at open (names, shapes, dtypes, offsets) and reads one tensor at a time
with plain file reads, not mmap, so resident memory stays at one tensor whatever the model size. Writing takes the
tensor specs up front (a plan), lays out shards and headers first, then streams each tensor's bytes straight into
its place: peak memory is one tensor, and the output is published atomically (see `growth.foundation.atomic`).

    ckpt = Checkpoint.open("Qwen3-4B-Base")
    with CheckpointWriter("out", specs, max_shard_bytes=2**30) as w:
        for spec in specs:
            w.add(spec.name, transform(ckpt.read(...)))
        w.write_config(config)
        w.copy_aux_from(ckpt)
        w.commit()
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from growth.foundation.atomic import StagingDir
from growth.foundation.errors import CheckpointError

INDEX_NAME = "model.safetensors.index.json"
# Lineage records describe how one checkpoint was made; a derived checkpoint writes its own, never inherits them.
LINEAGE_FILES = ("growth.json", "training.json", "merge.json")
SINGLE_NAME = "model.safetensors"
DEFAULT_SHARD_BYTES = 5 * 2**30
_MAX_HEADER = 100 * 2**20

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
# Names users pass on the command line (--dtype) for the float types a checkpoint may hold.
USER_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "float16": torch.float16, "fp16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    """Map a user dtype name (float32, bfloat16, float16 and short forms) to torch, with a clear error."""
    if name not in USER_DTYPES:
        raise CheckpointError(f"unsupported dtype {name!r}; use one of {', '.join(sorted(USER_DTYPES))}")
    return USER_DTYPES[name]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    file: Path
    start: int  # absolute byte offset in `file`
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class TensorSpec:
    """What a writer needs to know about a tensor before its data exists."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


def _read_header(file: Path) -> tuple[dict[str, Any], int]:
    """Return a shard's header dict and the absolute offset where its data begins; checks truncation."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{file}: corrupt safetensors header (file is {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER or n + 8 > size:
                raise CheckpointError(f"{file}: corrupt safetensors header (declared length {n}, file {size} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{file}: cannot read ({e.strerror})") from None
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{file}: corrupt safetensors header (not valid JSON)") from None
    data_start = 8 + n
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (a, b) = meta["dtype"], meta["shape"], meta["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{file}: corrupt safetensors header (bad entry for {name!r})") from None
        if dtype not in DTYPES:
            raise CheckpointError(f"{file}: tensor {name!r} has unsupported dtype {dtype}")
        numel = 1
        for d in shape:
            numel *= d
        if b - a != numel * DTYPES[dtype].itemsize:
            raise CheckpointError(f"{file}: corrupt safetensors header ({name!r} size does not match its shape)")
        end = max(end, b)
    if data_start + end > size:
        raise CheckpointError(f"{file}: truncated ({size} bytes, header needs {data_start + end})")
    return header, data_start


class Checkpoint:
    """A Hugging Face checkpoint directory opened for streaming reads."""

    def __init__(self, path: Path, config: dict[str, Any], tensors: dict[str, TensorInfo]) -> None:
        self.path = path
        self.config = config
        self._tensors = tensors
        self._buffer: torch.Tensor | None = None

    @classmethod
    def open(cls, path: str | Path) -> "Checkpoint":
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"checkpoint directory {path} does not exist")
        config = read_config(path)
        index = path / INDEX_NAME
        if index.exists():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (ValueError, KeyError, TypeError):
                raise CheckpointError(f"{index}: invalid index (no weight_map)") from None
            files = sorted(set(weight_map.values()))
        elif (path / SINGLE_NAME).exists():
            weight_map, files = None, [SINGLE_NAME]
        else:
            raise CheckpointError(f"{path}: no {SINGLE_NAME} or {INDEX_NAME}")
        tensors: dict[str, TensorInfo] = {}
        for fname in files:
            file = path / fname
            if not file.exists():
                raise CheckpointError(f"{path}: shard {fname} named in {INDEX_NAME} is missing")
            header, data_start = _read_header(file)
            for name, meta in header.items():
                if name == "__metadata__":
                    continue
                a, b = meta["data_offsets"]
                tensors[name] = TensorInfo(name, tuple(meta["shape"]), DTYPES[meta["dtype"]], file,
                                           data_start + a, data_start + b)
        if weight_map is not None:
            for name, fname in weight_map.items():
                if name not in tensors or tensors[name].file.name != fname:
                    raise CheckpointError(f"{path}: tensor {name!r} is listed in the index but not in {fname}")
        return cls(path, config, tensors)

    def names(self) -> list[str]:
        return list(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def info(self, name: str) -> TensorInfo:
        try:
            return self._tensors[name]
        except KeyError:
            raise CheckpointError(f"{self.path}: no tensor named {name!r}") from None

    def read(self, name: str, *, reuse: bool = False) -> torch.Tensor:
        """Read one tensor with plain reads (no mmap, so nothing else stays resident).

        With `reuse=True` the tensor lives in a buffer this reader keeps and overwrites on the next reuse read:
        no fresh allocation (and page faults) per tensor, for callers that consume it at once (copy, accumulate).
        """
        info = self.info(name)
        if reuse:
            if self._buffer is None or self._buffer.numel() < info.nbytes:
                self._buffer = torch.empty(info.nbytes, dtype=torch.uint8)
            buf = self._buffer[: info.nbytes]
        else:
            buf = torch.empty(info.nbytes, dtype=torch.uint8)
        with open(info.file, "rb", buffering=0) as f:
            f.seek(info.start)
            got = f.readinto(memoryview(buf.numpy()))
        if got != info.nbytes:
            raise CheckpointError(f"{info.file}: truncated while reading {name!r}")
        return buf.view(info.dtype).reshape(info.shape)

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self._tensors.values())

    def num_parameters(self) -> int:
        return sum(t.numel for t in self._tensors.values())

    def fingerprint(self) -> str:
        """A content fingerprint that is cheap at any size.

        Hashes config.json, every shard header and 64 KiB samples at 32 evenly spaced offsets of each shard. Two
        checkpoints with the same shapes but different weights (a training step apart) get different fingerprints.
        """
        h = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode())
        for file in sorted({t.file for t in self._tensors.values()}):
            size = file.stat().st_size
            h.update(f"{file.name}:{size}".encode())
            with open(file, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                h.update(f.read(n))
                step = max(size // 32, 1)
                for off in range(8 + n, size, step):
                    f.seek(off)
                    h.update(f.read(65536))
        return h.hexdigest()[:16]

    def aux_files(self) -> list[Path]:
        """Files besides weights, index, config and lineage records: tokenizer and generation config."""
        skip = {INDEX_NAME, "config.json", *LINEAGE_FILES}
        return sorted(p for p in self.path.iterdir()
                      if p.is_file() and p.name not in skip and not p.name.endswith(".safetensors")
                      and not p.name.startswith("."))


def read_config(path: Path) -> dict[str, Any]:
    cfg = path / "config.json"
    if not cfg.exists():
        raise CheckpointError(f"{path}: missing config.json")
    try:
        config = json.loads(cfg.read_text())
    except ValueError as e:
        raise CheckpointError(f"{cfg}: invalid JSON ({e})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise CheckpointError(f"{cfg}: invalid config (no model_type)")
    return config


def plan_shards(specs: Iterable[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    """Split specs, in order, into shards of at most `max_shard_bytes` (a larger tensor gets a shard alone)."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards if shards[0] else []


def _header_bytes(specs: list[TensorSpec]) -> bytes:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    off = 0
    for s in specs:
        header[s.name] = {"dtype": DTYPE_NAMES[s.dtype], "shape": list(s.shape), "data_offsets": [off, off + s.nbytes]}
        off += s.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def _sync_close(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


class CheckpointWriter:
    """Write a checkpoint tensor by tensor, in the order of `specs`, then publish it atomically.

    An existing `out` is only replaced with `force=True`, and only at `commit()`; until then it is untouched.
    """

    def __init__(self, out: str | Path, specs: Iterable[TensorSpec], *, max_shard_bytes: int = DEFAULT_SHARD_BYTES,
                 force: bool = False) -> None:
        specs = list(specs)
        for s in specs:
            if s.dtype not in DTYPE_NAMES:
                raise CheckpointError(f"tensor {s.name!r}: unsupported dtype {s.dtype}")
        if len({s.name for s in specs}) != len(specs):
            raise CheckpointError("duplicate tensor names in the output plan")
        self._staging = StagingDir(out, force=force)
        self.out = self._staging.out
        self.path = self._staging.path
        shards = plan_shards(specs, max_shard_bytes)
        if len(shards) <= 1:
            self._files = [SINGLE_NAME]
        else:
            self._files = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        self._queue = [(spec, fname, i == 0, i == len(shard) - 1)
                       for shard, fname in zip(shards, self._files) for i, spec in enumerate(shard)]
        self._shards = dict(zip(self._files, shards))
        self._pos = 0
        self._fh: Any = None
        # Finished shards are fsynced on a background thread while the next one is written, so the flush to disk
        # overlaps the work instead of all landing at publish time.
        self._syncer = ThreadPoolExecutor(max_workers=1)
        self._synced: list[Future] = []
        self._total = sum(s.nbytes for s in specs)

    def _next(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[Any, bool]:
        if self._pos >= len(self._queue):
            raise CheckpointError(f"tensor {name!r} is not in the output plan")
        spec, fname, first, last = self._queue[self._pos]
        if name != spec.name or shape != spec.shape or dtype != spec.dtype:
            raise CheckpointError(f"expected {spec.name} {list(spec.shape)} {spec.dtype}, "
                                  f"got {name} {list(shape)} {dtype}")
        if first:
            self._fh = open(self.path / fname, "wb")
            self._fh.write(_header_bytes(self._shards[fname]))
        self._pos += 1
        return self._fh, last

    def _done(self, last: bool) -> None:
        if last:
            self._synced.append(self._syncer.submit(_sync_close, self._fh))
            self._fh = None

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Append the next tensor; its name, shape and dtype must match the next spec."""
        fh, last = self._next(name, tuple(tensor.shape), tensor.dtype)
        fh.write(memoryview(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()))
        self._done(last)

    def copy_from(self, src: Checkpoint, src_name: str, name: str | None = None) -> None:
        """Append the next tensor as an unchanged copy of `src_name` in `src`, copied by the kernel.

        `os.copy_file_range` moves the bytes file to file without passing through this process, which is how
        growth copies the tensors a plan leaves untouched at `cp` speed.
        """
        info = src.info(src_name)
        fh, last = self._next(name or src_name, info.shape, info.dtype)
        fh.flush()
        with open(info.file, "rb") as f:
            offset, left = info.start, info.nbytes
            while left:
                n = os.copy_file_range(f.fileno(), fh.fileno(), left, offset)
                if n == 0:
                    raise CheckpointError(f"{info.file}: truncated while reading {src_name!r}")
                offset += n
                left -= n
        self._done(last)

    def write_config(self, config: Mapping[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def write_json(self, name: str, obj: Any) -> None:
        (self.path / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    def copy_aux_from(self, src: Checkpoint, exclude: Iterable[str] = ()) -> None:
        """Copy tokenizer and generation files (not config, weights or the names in `exclude`)."""
        skip = set(exclude)
        for f in src.aux_files():
            if f.name not in skip:
                shutil.copy2(f, self.path / f.name)

    def commit(self) -> Path:
        for future in self._synced:
            future.result()
        if self._pos != len(self._queue):
            missing = self._queue[self._pos][0].name
            raise CheckpointError(f"output incomplete: {len(self._queue) - self._pos} tensors missing, first {missing}")
        if not (self.path / "config.json").exists():
            raise CheckpointError("output has no config.json; call write_config before commit")
        if len(self._files) > 1:
            weight_map = {s.name: f for f, shard in self._shards.items() for s in shard}
            (self.path / INDEX_NAME).write_text(
                json.dumps({"metadata": {"total_size": self._total}, "weight_map": weight_map}, indent=2) + "\n")
        return self._staging.publish()

    def __enter__(self) -> "CheckpointWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
        self._syncer.shutdown(wait=True)
        self._staging.cleanup()


def save_state_dict(out: str | Path, state: Mapping[str, torch.Tensor], config: Mapping[str, Any], *,
                    aux_from: Checkpoint | None = None, extra_json: Mapping[str, Any] | None = None,
                    max_shard_bytes: int = DEFAULT_SHARD_BYTES, force: bool = False) -> Path:
    """Write an in-memory state dict as a complete checkpoint (training exports, fixtures)."""
    specs = [TensorSpec(k, tuple(v.shape), v.dtype) for k, v in state.items()]
    with CheckpointWriter(out, specs, max_shard_bytes=max_shard_bytes, force=force) as w:
        for k, v in state.items():
            w.add(k, v)
        w.write_config(config)
        if aux_from is not None:
            w.copy_aux_from(aux_from, exclude=(extra_json or {}).keys())
        for name, obj in (extra_json or {}).items():
            w.write_json(name, obj)
        return w.commit()
