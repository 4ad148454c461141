"""Streaming checkpoint I/O for Hugging Face safetensors checkpoints, used by growth, merge and training exports.

Reading parses only the safetensors headers at open (names, shapes, dtypes, offsets) and reads tensors, or byte
ranges of them, with positional reads (pread), not mmap, so resident memory is what the caller asks for whatever
the model size, and any number of threads can read at once. Writing takes the tensor specs up front (a plan), lays
out shards and headers first, then writes each tensor's bytes straight into its place, in any order and from any
thread: peak memory is what the caller holds, the disk starts writing at the first byte (`growth.writeback`), and
the output is published atomically (see `growth.foundation.atomic`).

    ckpt = Checkpoint.open("Qwen3-4B-Base")
    with CheckpointWriter("out", specs, max_shard_bytes=2**30) as w:
        for spec in specs:
            w.add(spec.name, transform(ckpt.read(...)))     # or w.copy_from(ckpt, name), w.write_part(...)
        w.write_config(config)
        w.copy_aux_from(ckpt)
        w.commit()
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from growth.foundation.atomic import StagingDir
from growth.foundation.errors import CheckpointError
from growth.iostats import IOStats, span
from growth.writeback import Writeback

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
        self._fds: dict[Path, int] = {}
        self._lock = threading.Lock()

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

    def _fd(self, file: Path) -> int:
        """One read-only descriptor per shard, opened on first use; positional reads share it across threads."""
        fd = self._fds.get(file)
        if fd is None:
            with self._lock:
                fd = self._fds.get(file)
                if fd is None:
                    fd = self._fds[file] = os.open(file, os.O_RDONLY)
        return fd

    def close(self) -> None:
        """Close the shard descriptors opened for reads (a later read opens them again)."""
        fds, self._fds = getattr(self, "_fds", {}), {}
        for fd in fds.values():
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def read_into(self, name: str, buf: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Bytes [start, start + buf.numel()) of tensor `name` into the contiguous uint8 `buf`; returns `buf`.

        A positional read (pread), safe from any thread: the merge workers read blocks of every input this way.
        """
        info = self.info(name)
        if start < 0 or start + buf.numel() > info.nbytes:
            raise CheckpointError(f"{info.file}: bytes [{start}, {start + buf.numel()}) are outside {name!r}")
        view, offset = memoryview(buf.numpy()), info.start + start
        while len(view):
            got = os.preadv(self._fd(info.file), [view], offset)
            if got == 0:
                raise CheckpointError(f"{info.file}: truncated while reading {name!r}")
            view, offset = view[got:], offset + got
        return buf

    def prefetch(self, name: str, start: int, length: int) -> None:
        """Ask the kernel to start reading bytes [start, start + length) of `name` into the page cache, without
        waiting: readahead for inputs on disk, a cheap no-op for those already cached."""
        if hasattr(os, "posix_fadvise"):
            info = self.info(name)
            os.posix_fadvise(self._fd(info.file), info.start + start, length, os.POSIX_FADV_WILLNEED)

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
        return self.read_into(name, buf).view(info.dtype).reshape(info.shape)

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


@dataclass(frozen=True)
class _Slot:
    """Where one output tensor goes: its spec, its shard (index into the writer's files) and absolute offset."""

    spec: TensorSpec
    shard: int
    start: int


class CheckpointWriter:
    """Write a checkpoint's tensors in any order, from any thread, then publish it atomically.

    The layout is fixed up front from the specs (shards, headers, every tensor's offset), so a tensor, or any part
    of one, is written straight to its place with pwrite and parallel workers never wait on each other. Each
    written range goes to `Writeback`, which has the kernel put it on disk at once; a shard is fsynced and closed
    on that background thread as soon as its last byte is written, so the flush overlaps the rest of the work
    instead of all landing at publish time. An existing `out` is only replaced with `force=True`, and only at
    `commit()`; until then it is untouched.
    """

    def __init__(self, out: str | Path, specs: Iterable[TensorSpec], *, max_shard_bytes: int = DEFAULT_SHARD_BYTES,
                 force: bool = False, stats: IOStats | None = None) -> None:
        specs = list(specs)
        for s in specs:
            if s.dtype not in DTYPE_NAMES:
                raise CheckpointError(f"tensor {s.name!r}: unsupported dtype {s.dtype}")
        if len({s.name for s in specs}) != len(specs):
            raise CheckpointError("duplicate tensor names in the output plan")
        self._staging = StagingDir(out, force=force)
        self.out = self._staging.out
        self.path = self._staging.path
        self.stats = stats
        shards = plan_shards(specs, max_shard_bytes)
        if len(shards) <= 1:
            self._files = [SINGLE_NAME]
        else:
            self._files = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        self._shards = dict(zip(self._files, shards))
        self._headers = [_header_bytes(shard) for shard in shards]
        self._slots: dict[str, _Slot] = {}
        for i, (shard, header) in enumerate(zip(shards, self._headers)):
            offset = len(header)
            for spec in shard:
                self._slots[spec.name] = _Slot(spec, i, offset)
                offset += spec.nbytes
        self._left = {name: slot.spec.nbytes for name, slot in self._slots.items()}  # bytes still to write
        self._pending = set(self._slots)  # tensors not yet complete (also covers empty ones)
        self._shard_left = [sum(spec.nbytes for spec in shard) for shard in shards]
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()
        self._writeback = Writeback(stats=stats)
        self._total = sum(s.nbytes for s in specs)

    def _slot(self, name: str) -> _Slot:
        try:
            return self._slots[name]
        except KeyError:
            raise CheckpointError(f"tensor {name!r} is not in the output plan") from None

    def _fd(self, shard: int) -> int:
        with self._lock:
            fd = self._fds.get(shard)
            if fd is None:
                fd = self._fds[shard] = os.open(self.path / self._files[shard], os.O_WRONLY | os.O_CREAT, 0o644)
                os.pwrite(fd, self._headers[shard], 0)
            return fd

    def _reserve(self, slot: _Slot, offset: int, length: int) -> int:
        """Claim bytes [offset, offset + length) of `slot`'s tensor before writing them; returns the shard's fd."""
        name = slot.spec.name
        if offset < 0 or offset + length > slot.spec.nbytes:
            raise CheckpointError(f"bytes [{offset}, {offset + length}) are outside {name!r} "
                                  f"({slot.spec.nbytes} bytes)")
        with self._lock:
            if name not in self._pending or self._left[name] < length:
                raise CheckpointError(f"tensor {name!r} is written twice")
            self._left[name] -= length
            if self._left[name] == 0:
                self._pending.discard(name)
        return self._fd(slot.shard)

    def _written(self, slot: _Slot, fd: int, offset: int, length: int) -> None:
        """Bytes [offset, offset + length) of `slot`'s tensor are in the file: start their writeback, and fsync and
        close the shard once all of it is written."""
        self._writeback.written(fd, slot.start + offset, length)
        with self._lock:
            self._shard_left[slot.shard] -= length
            complete = self._shard_left[slot.shard] == 0 and self._fds.get(slot.shard) == fd
            if complete:
                del self._fds[slot.shard]
        if complete:
            self._writeback.close(fd)

    def write_part(self, name: str, offset: int, data: torch.Tensor) -> None:
        """Write the bytes of the contiguous tensor `data` at byte `offset` of output tensor `name`."""
        slot = self._slot(name)
        view = memoryview(data.reshape(-1).view(torch.uint8).numpy())
        length = len(view)
        fd = self._reserve(slot, offset, length)
        pos = slot.start + offset
        with span(self.stats, "write"):
            while len(view):
                n = os.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
        self._written(slot, fd, offset, length)

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Write a whole tensor; its name, shape and dtype must match a spec not yet written."""
        spec = self._slot(name).spec
        if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
            raise CheckpointError(f"expected {spec.name} {list(spec.shape)} {spec.dtype}, "
                                  f"got {name} {list(tensor.shape)} {tensor.dtype}")
        self.write_part(name, 0, tensor.detach().cpu().contiguous())

    def copy_from(self, src: Checkpoint, src_name: str, name: str | None = None, *, times: int = 1) -> None:
        """Write `src_name` of `src` as output tensor `name`, or `times` copies of it stacked along dim 0.

        The kernel moves the bytes file to file (`os.copy_file_range`) without passing them through this process,
        which is how growth copies the tensors a plan leaves untouched, and the rows it duplicates, at `cp` speed.
        """
        info = src.info(src_name)
        slot = self._slot(name or src_name)
        spec = slot.spec
        stacked = (info.shape[0] * times, *info.shape[1:]) if info.shape else info.shape
        if stacked != spec.shape or info.dtype != spec.dtype or (times != 1 and not info.shape):
            raise CheckpointError(f"expected {spec.name} {list(spec.shape)} {spec.dtype}, got {times} x "
                                  f"{src_name} {list(info.shape)} {info.dtype}")
        fd = self._reserve(slot, 0, spec.nbytes)
        for i in range(times):
            with span(self.stats, "copy"):
                _copy_range(src._fd(info.file), info.start, fd, slot.start + i * info.nbytes, info.nbytes, info)
            self._written(slot, fd, i * info.nbytes, info.nbytes)

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
        """Wait for every shard's fsync, check every tensor and the config are written, write the index, publish."""
        self._writeback.wait()
        missing = [name for name in self._slots if name in self._pending]
        if missing:
            raise CheckpointError(f"output incomplete: {len(missing)} tensors missing, first {missing[0]}")
        if not (self.path / "config.json").exists():
            raise CheckpointError("output has no config.json; call write_config before commit")
        if len(self._files) > 1:
            weight_map = {s.name: f for f, shard in self._shards.items() for s in shard}
            (self.path / INDEX_NAME).write_text(
                json.dumps({"metadata": {"total_size": self._total}, "weight_map": weight_map}, indent=2) + "\n")
        with span(self.stats, "fsync"):
            return self._staging.publish()

    def __enter__(self) -> "CheckpointWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self._writeback.shutdown()  # let queued fsyncs finish before closing what is still open (after an error)
        with self._lock:
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)
        self._staging.cleanup()


def _copy_range(src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, length: int, info: TensorInfo) -> None:
    """Copy bytes file to file in the kernel; where copy_file_range cannot (another file system), via pread/pwrite."""
    while length:
        try:
            n = os.copy_file_range(src_fd, dst_fd, length, src_offset, dst_offset)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            data = os.pread(src_fd, min(length, 64 * 2**20), src_offset)
            n = len(data) and os.pwrite(dst_fd, data, dst_offset)
        if n == 0:
            raise CheckpointError(f"{info.file}: truncated while reading {info.name!r}")
        src_offset, dst_offset, length = src_offset + n, dst_offset + n, length - n


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
