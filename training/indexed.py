"""Megatron's indexed dataset (a `.bin` of tokens and an `.idx` index, the MMIDIDX format), read and written here.

This is the format FlagScale and Megatron train from, and what `growbench data prepare` writes: megatron-core's
`IndexedDataset` reads our files and we read files its `IndexedDatasetBuilder` wrote (tests/training/test_indexed.py
checks both ways against megatron-core itself). We read and write it without importing megatron-core because its
import costs ~5 s in every worker process, and the format is small:

    .idx  b"MMIDIDX\\x00\\x00", version <Q = 1, dtype code <B, sequence count <Q, document count <Q,
          sequence lengths int32[n], byte pointers into .bin int64[n], document indices int64[d]
          (sequence numbers where documents end, starting with 0)
    .bin  the sequences' tokens back to back, in the dtype of the code (uint16 below 65,500 vocabulary entries,
          else int32: Megatron's DType.optimal_dtype)

Every document `prepare` writes is one sequence (its tokens then EOS), as Megatron's `preprocess_data.py --append-eod`
writes them. A writer publishes its pair atomically: .bin then .idx are renamed into place after an fsync, so a
complete .idx whose sizes match the .bin marks a finished shard, and a reader refuses a missing or truncated pair
with one line naming the file.
"""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path

import numpy as np

from growth.foundation.atomic import fsync_dir
from growth.foundation.errors import DataError

HEADER = b"MMIDIDX\x00\x00"
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}
CODES = {np.dtype(t): code for code, t in DTYPES.items()}
_PREAMBLE = len(HEADER) + 8 + 1 + 8 + 8


def token_dtype(vocab_size: int) -> np.dtype:
    """The token dtype Megatron picks for a vocabulary (DType.optimal_dtype): uint16 below 65,500 entries, else int32."""
    return np.dtype(np.uint16 if vocab_size < 65500 else np.int32)


def paths(prefix: str | Path) -> tuple[Path, Path]:
    return Path(f"{prefix}.bin"), Path(f"{prefix}.idx")


class IndexedWriter:
    """Streams documents into `prefix`.bin/.idx under temporary names; `commit()` publishes both, `abort()` drops them.

    Memory is one int32 length per document (a shard of 256 MiB of text holds a few hundred thousand), never tokens.
    """

    def __init__(self, prefix: str | Path, dtype: np.dtype) -> None:
        self.bin_path, self.idx_path = paths(prefix)
        self.dtype = np.dtype(dtype)
        tag = f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._bin_tmp = self.bin_path.with_name(f".{self.bin_path.name}{tag}")
        self._idx_tmp = self.idx_path.with_name(f".{self.idx_path.name}{tag}")
        self.bin_path.parent.mkdir(parents=True, exist_ok=True)
        self._bin = open(self._bin_tmp, "wb")
        self.lengths: list[int] = []
        self.tokens = 0

    def add_document(self, tokens: np.ndarray) -> None:
        self._bin.write(np.asarray(tokens, dtype=self.dtype).tobytes())
        self.lengths.append(len(tokens))
        self.tokens += len(tokens)

    def commit(self) -> None:
        self._bin.flush()
        os.fsync(self._bin.fileno())
        self._bin.close()
        lengths = np.asarray(self.lengths, dtype=np.int32)
        pointers = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], dtype=np.int64, out=pointers[1:])
        pointers *= self.dtype.itemsize
        with open(self._idx_tmp, "wb") as f:
            f.write(HEADER + struct.pack("<Q", 1) + struct.pack("<B", CODES[self.dtype]))
            f.write(struct.pack("<Q", len(lengths)) + struct.pack("<Q", len(lengths) + 1))
            f.write(lengths.tobytes() + pointers.tobytes() + np.arange(len(lengths) + 1, dtype=np.int64).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(self._bin_tmp, self.bin_path)
        os.replace(self._idx_tmp, self.idx_path)
        fsync_dir(self.bin_path.parent)

    def abort(self) -> None:
        self._bin.close()
        self._bin_tmp.unlink(missing_ok=True)
        self._idx_tmp.unlink(missing_ok=True)


class IndexedDataset:
    """One memory-mapped .bin/.idx pair: its sequences as one token stream (`tokens(start, stop)`), and where each
    sequence starts in it. Opening checks the pair is whole: DataError naming the file otherwise."""

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = str(prefix)
        bin_path, idx_path = paths(prefix)
        for p in (idx_path, bin_path):
            if not p.is_file():
                raise DataError(f"{p} is missing: indexed datasets come as a .bin and an .idx")
        size = idx_path.stat().st_size
        with open(idx_path, "rb") as f:
            head = f.read(_PREAMBLE)
        if len(head) < _PREAMBLE or head[:len(HEADER)] != HEADER:
            raise DataError(f"{idx_path} is not a Megatron indexed dataset index (no MMIDIDX header)")
        code, n, docs = head[17], *struct.unpack("<QQ", head[18:34])
        if code not in DTYPES:
            raise DataError(f"{idx_path}: unknown token dtype code {code}")
        if size < _PREAMBLE + 12 * n + 8 * docs:
            raise DataError(f"{idx_path} is truncated ({size} bytes; its header announces {n} sequences)")
        self.dtype = np.dtype(DTYPES[code])
        idx = np.memmap(idx_path, dtype=np.uint8, mode="r")
        self.lengths = idx[_PREAMBLE:_PREAMBLE + 4 * n].view(np.int32)
        self.pointers = idx[_PREAMBLE + 4 * n:_PREAMBLE + 12 * n].view(np.int64)
        self.document_indices = idx[_PREAMBLE + 12 * n:_PREAMBLE + 12 * n + 8 * docs].view(np.int64)
        expected = int(self.pointers[-1]) + int(self.lengths[-1]) * self.dtype.itemsize if n else 0
        actual = bin_path.stat().st_size
        if actual != expected:
            raise DataError(f"{bin_path} has {actual} bytes where its index announces {expected}: "
                            f"{'truncated' if actual < expected else 'not the file this index was written for'}")
        self.bin_path, self.idx_path = bin_path, idx_path
        self.sequences = n
        self.num_tokens = expected // self.dtype.itemsize
        self._bin = np.memmap(bin_path, dtype=self.dtype, mode="r") if expected else np.zeros(0, self.dtype)

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the stream (every sequence back to back); a view of the mapped file."""
        return self._bin[start:stop]

    def starts(self) -> np.ndarray:
        """Where each sequence starts in the token stream."""
        return self.pointers // self.dtype.itemsize

    def sequence(self, i: int) -> np.ndarray:
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self._bin[start:start + int(self.lengths[i])]

    def nbytes(self) -> dict[str, int]:
        return {"bin": self.bin_path.stat().st_size, "idx": self.idx_path.stat().st_size}
