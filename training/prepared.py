"""Prepared token data: the manifest `growbench data prepare` writes, and each source as one token stream to read.

    DIR/manifest.json             tokenizer identity and hash, token dtype, per source: documents, tokens, shards,
                                  input files with sizes (written last: a DIR without it is not ready)
    DIR/<source>/shard-00000.bin  Megatron indexed datasets (training/indexed.py), one per input shard
    DIR/<source>/shard-00000.idx

A source is the concatenation of its shards' tokens (or of the Megatron prefixes a train config lists for it, for
data tokenized elsewhere). Its last documents, at least `validation.sequences` x seq_len tokens, are held out for
validation, Megatron's way of splitting (a contiguous tail of whole documents, never trained on). The rest is cut
into `seq_len` windows; training sample k of the source is window perm_e(k mod n) of epoch e = k // n, where
perm_e is a seeded bijection of [0, n) (a Feistel network, computed per sample in O(1)): every window once per
epoch, a fresh order every epoch, and nothing to build or store per source, whatever its size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from growth.foundation.errors import DataError
from training.indexed import IndexedDataset, paths

MANIFEST = "manifest.json"
FORMAT = "growbench-prepared/1"


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """What a prepared dataset records of its tokenizer; equal `sha256` means equal token ids for any text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    else:
        spec = sorted(tokenizer.get_vocab().items())
    text = json.dumps([type(tokenizer).__name__, spec, tokenizer.eos_token_id], sort_keys=True)
    return {"name_or_path": str(tokenizer.name_or_path), "class": type(tokenizer).__name__,
            "vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id,
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise DataError(f"{directory} has no {MANIFEST}: not prepared data, or a `growbench data prepare` that did not "
                        f"finish (run it again; finished shards are kept)")
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT}")
        manifest["sources"], manifest["tokenizer"]["sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not a growbench prepared-data manifest ({e})") from None
    return manifest


def check_tokenizer(manifest: dict[str, Any], tokenizer: Any, where: str | Path) -> None:
    ours = tokenizer_identity(tokenizer)
    theirs = manifest["tokenizer"]
    if ours["sha256"] != theirs["sha256"]:
        raise DataError(f"{where} was prepared with another tokenizer ({theirs['name_or_path']}, {theirs['class']}, "
                        f"{theirs['vocab_size']} tokens, sha256 {theirs['sha256'][:12]}) than the model's "
                        f"({ours['name_or_path']}, {ours['class']}, {ours['vocab_size']} tokens, sha256 "
                        f"{ours['sha256'][:12]}); prepare it again with this model's config")


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def permute(i: np.ndarray, n: int, key: str) -> np.ndarray:
    """A seeded bijection of [0, n) applied to `i`: a 4-round Feistel network on the smallest even-bit domain that
    holds n (under 4n), cycle-walking values that land outside [0, n) until they fall inside."""
    i = np.asarray(i, dtype=np.uint64)
    if n <= 1:
        return i.astype(np.int64)
    half = max(1, ((n - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    digest = hashlib.sha256(key.encode()).digest()
    keys = [np.uint64(int.from_bytes(digest[8 * r:8 * r + 8], "little")) for r in range(4)]
    out = i.copy()
    todo = np.ones(len(out), dtype=bool)
    while todo.any():
        x = out[todo]
        left, right = x >> np.uint64(half), x & mask
        for k in keys:
            left, right = right, left ^ (_mix(right ^ k) & mask)
        x = (left << np.uint64(half)) | right
        out[todo] = x
        todo[todo] = x >= np.uint64(n)
    return out.astype(np.int64)


@dataclass(frozen=True)
class Shard:
    """One indexed dataset of a source; the counts and sizes come from the manifest (None: read from the files)."""

    prefix: str
    tokens: int | None = None
    documents: int | None = None
    bin: int | None = None
    idx: int | None = None


def check_sizes(shard: Shard) -> None:
    """A manifest shard's files exist with the sizes prepare recorded (a stat each: cheap for thousands of shards)."""
    bin_path, idx_path = paths(shard.prefix)
    for p, size in ((idx_path, shard.idx), (bin_path, shard.bin)):
        if not p.is_file():
            raise DataError(f"{p} is missing: indexed datasets come as a .bin and an .idx")
        actual = p.stat().st_size
        if actual != size:
            raise DataError(f"{p} has {actual} bytes where the manifest records {size}: "
                            f"{'truncated' if actual < size else 'replaced'}; prepare it again")


class PreparedSource:
    """One source's tokens over its shards: a held-out tail of whole documents and `windows` training windows.

    Shards listed in a manifest are checked by size and opened when first read, so opening a source costs a stat
    per shard whatever its size; prefixes without a manifest are opened (and so fully checked) at once."""

    def __init__(self, name: str, shards: list[Shard], seq_len: int, held_out: int, seed: int) -> None:
        self.name, self.seq_len, self.seed = name, seq_len, seed
        known, opened = [], {}
        for shard in shards:
            if shard.tokens is None:
                d = IndexedDataset(shard.prefix)
                shard = Shard(shard.prefix, d.num_tokens, d.sequences, **d.nbytes())
                opened[shard.prefix] = d
            else:
                check_sizes(shard)
            known.append(shard)
        self.documents = sum(s.documents for s in known)
        self.shards = [s for s in known if s.tokens]
        self._open = {k: opened[s.prefix] for k, s in enumerate(self.shards) if s.prefix in opened}
        self.offsets = np.cumsum([0] + [s.tokens for s in self.shards], dtype=np.int64)
        self.num_tokens = int(self.offsets[-1])
        if not self.num_tokens:
            raise DataError(f"source {name}: its prepared data holds no tokens ({', '.join(s.prefix for s in shards)})")
        self.held_out = held_out
        self.train_tokens = self._document_start_before(self.num_tokens - held_out * seq_len) if held_out else \
            self.num_tokens
        self.windows = self.train_tokens // seq_len
        if self.windows < 1:
            what = f" after holding out {held_out} validation sequences" if held_out else ""
            raise DataError(f"source {name}: {self.num_tokens:,} tokens leave no training sequence of {seq_len} "
                            f"tokens{what}; prepare more of it or lower data.validation.sequences")

    def dataset(self, k: int) -> IndexedDataset:
        """Shard k, opened on first use (and checked against the manifest's token count)."""
        if k not in self._open:
            d = IndexedDataset(self.shards[k].prefix)
            if d.num_tokens != self.shards[k].tokens:
                raise DataError(f"{d.idx_path} counts {d.num_tokens} tokens where the manifest records "
                                f"{self.shards[k].tokens}; prepare it again")
            self._open[k] = d
        return self._open[k]

    def _document_start_before(self, limit: int) -> int:
        """The start of the last document that begins at or before token `limit` of the stream (-1: none)."""
        for k in range(len(self.shards) - 1, -1, -1):
            base = int(self.offsets[k])
            if base > limit:
                continue
            shard = self.dataset(k)
            byte = (limit - base) * shard.dtype.itemsize
            j = int(np.searchsorted(shard.pointers, byte, side="right")) - 1
            return base + int(shard.pointers[j]) // shard.dtype.itemsize
        return -1

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the source's stream, across shard boundaries."""
        k = int(np.searchsorted(self.offsets, start, side="right")) - 1
        parts = []
        while start < stop:
            base, shard = int(self.offsets[k]), self.dataset(k)
            end = min(stop, base + shard.num_tokens)
            parts.append(shard.tokens(start - base, end - base))
            start, k = end, k + 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def window_of(self, sample: np.ndarray) -> np.ndarray:
        """The training window each of the source's samples reads (sample k: epoch k // windows, shuffled)."""
        sample = np.asarray(sample, dtype=np.int64)
        epoch, i = np.divmod(sample, self.windows)
        out = np.empty_like(sample)
        for e in np.unique(epoch):
            at = epoch == e
            out[at] = permute(i[at], self.windows, f"{self.seed}:{self.name}:{int(e)}")
        return out

    def samples(self, sample: np.ndarray, out: np.ndarray) -> None:
        """Write the tokens of the source's training samples into the rows of `out`."""
        for row, w in zip(out, self.window_of(sample)):
            row[:] = self.tokens(int(w) * self.seq_len, (int(w) + 1) * self.seq_len)

    def validation(self) -> np.ndarray:
        """The held-out sequences, [held_out, seq_len] int32: the tail after the training tokens, in order."""
        start = self.train_tokens
        rows = [self.tokens(start + k * self.seq_len, start + (k + 1) * self.seq_len) for k in range(self.held_out)]
        return np.stack(rows).astype(np.int32) if rows else np.zeros((0, self.seq_len), np.int32)

    def identity(self) -> dict[str, Any]:
        """What the sample stream depends on, for the loader's fingerprint (file names and sizes, not locations)."""
        return {"shards": [[Path(s.prefix).name, s.bin, s.documents] for s in self.shards],
                "tokens": self.num_tokens, "held_out": self.held_out}


def source_shards(name: str, manifest: dict[str, Any] | None, directory: Path | None,
                  own: list[str]) -> list[Shard]:
    """Where source `name` is prepared: its own Megatron prefixes, else the prepared directory's shards."""
    if own:
        return [Shard(p) for p in own]
    entry = (manifest or {}).get("sources", {}).get(name)
    if entry is None:
        have = ", ".join(sorted((manifest or {}).get("sources", {}))) or "none"
        raise DataError(f"source {name} is in the mixture but has no prepared data in {directory} (prepared: {have}); "
                        f"run `growbench data prepare --config CONFIG --out {directory} --sources {name}`")
    return [Shard(str(directory / s["prefix"]), s["tokens"], s["documents"], s["bin"], s["idx"])
            for s in entry["shards"]]


def check_vocabulary(source: PreparedSource, vocab_size: int, sample_tokens: int = 1 << 20) -> None:
    """Data tokenized elsewhere (no manifest): its first tokens must be ids the model's vocabulary has."""
    head = source.tokens(0, min(source.num_tokens, sample_tokens))
    top = int(head.max()) if len(head) else 0
    if top >= vocab_size:
        raise DataError(f"source {source.name}: token id {top} in {source.shards[0].prefix}.bin is outside the "
                        f"model's vocabulary of {vocab_size}: tokenized with another tokenizer")


def describe(path: str | Path) -> dict[str, Any]:
    """What `growbench data inspect` shows: a prepared directory's manifest, or Megatron prefixes (a PREFIX, or a
    folder of PREFIX.idx files) opened and counted, each as a source."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path)
        for entry in manifest["sources"].values():
            entry["prefixes"] = [str(path / shard["prefix"]) for shard in entry["shards"]]
        return manifest
    prefixes = [str(path)] if Path(f"{path}.idx").is_file() else \
        sorted(str(p.with_suffix("")) for p in path.glob("*.idx")) if path.is_dir() else []
    if not prefixes:
        raise DataError(f"{path} is neither a prepared directory ({MANIFEST}) nor a Megatron indexed dataset "
                        f"(PREFIX.bin + PREFIX.idx, or a folder of them)")
    sources = {}
    for prefix in prefixes:
        d = IndexedDataset(prefix)
        sources[Path(prefix).name] = {"documents": d.sequences, "tokens": d.num_tokens, "prefixes": [prefix],
                                      "shards": [{"prefix": prefix, **d.nbytes()}], "dtype": d.dtype.name}
    return {"tokenizer": None, "dtype": next(iter(sources.values()))["dtype"], "sources": sources}


def document(prefixes: list[str], k: int) -> np.ndarray:
    """Document k of a source whose shards are `prefixes` (numbered across shards)."""
    for prefix in prefixes:
        d = IndexedDataset(prefix)
        if k < d.sequences:
            return d.sequence(k)
        k -= d.sequences
    raise DataError(f"document {k} is past the end of the source")
