"""`growbench data prepare`: tokenize every source of a train config's mixtures once, into Megatron indexed datasets.

    growbench data prepare --config training/configs/openseek-mid-v1.yaml --out /data/openseek-tokens
    growbench data prepare --config FILE --out DIR --sources stack-edu-Python,stack-edu-Go --workers 8

Plan, then execute. Each source is split into units of about `shard_size` bytes of input: line-aligned byte ranges
of a JSONL file, runs of parquet row groups, groups of plain-text files (one document each); a generated source
(prose, math, code, python-stdlib) or a hub dataset (streamed, one pass) is one unit of as many tokens as the
mixture draws from it. Unit i of a source becomes DIR/<source>/shard-0000i.{bin,idx}: its documents tokenized with
the model's tokenizer (as the on-the-fly loader does, no special tokens), EOS after each, in input order. The units
depend only on the inputs and shard_size, never on --workers, so any number of workers writes the same bytes.

Workers are forked processes (one per core by default), longest unit first. Each streams its unit in batches of
documents (memory: a batch of text and one length per document) and publishes its shard atomically
(training/indexed.py). A killed prepare keeps its finished shards and the next run redoes the rest; a source whose
inputs changed since (paths, sizes, modification times) is redone whole. DIR/manifest.json is written last:
without it training refuses DIR. A corrupt JSONL line stops the run with its file and line number.
"""

from __future__ import annotations

import gc
import glob
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from growth.foundation.atomic import pid_alive, write_json
from growth.foundation.errors import ConfigError, DataError
from growth.tinytext import documents, python_stdlib_files
from training.blend import normalized
from training.data import file_format
from training.indexed import IndexedDataset, IndexedWriter, token_dtype
from training.mixture import Source, Stage, resolve_stages
from training.prepared import FORMAT, MANIFEST, read_manifest, tokenizer_identity

SHARD_SIZE = 256 * 2**20
BATCH_BYTES = 4 * 2**20
PLAN = "plan.json"
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Unit:
    """One shard's worth of a source's input; `size` is its input bytes (progress and scheduling)."""

    source: str
    shard: int
    kind: str
    """jsonl, parquet, text, generator or hf."""
    path: str = ""
    files: tuple[str, ...] = ()
    start: int = 0
    """jsonl: first byte; parquet: first row group."""
    stop: int = 0
    text_field: str = "text"
    generator: str = ""
    hf: tuple[str, str | None, str] | None = None
    tokens: int = 0
    """generator and hf units: stop once this many tokens are written."""
    seed: int = 0
    size: int = 0

    @property
    def prefix(self) -> str:
        return f"{self.source}/shard-{self.shard:05d}"


@dataclass
class SourceSummary:
    name: str
    documents: int
    tokens: int
    shards: int
    input_bytes: int
    drawn_tokens: float
    """Tokens the mixture's stages draw from this source (stage budget x weight, summed)."""
    dataset_tokens_b: float | None
    """The card's size of the whole dataset, billions of tokens."""

    @property
    def epochs(self) -> float:
        return self.drawn_tokens / self.tokens if self.tokens else math.inf


@dataclass
class PrepareSummary:
    out: Path
    sources: list[SourceSummary]
    units: int
    skipped: int
    """Units whose shard a previous run finished."""
    workers: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sources)


def drawn_tokens(stages: list[Stage]) -> dict[str, float]:
    out: dict[str, float] = {}
    for st in stages:
        for s, w in zip(st.sources, normalized([s.weight for s in st.sources])):
            out[s.name] = out.get(s.name, 0.0) + st.tokens * w
    return out


def plan_units(source: Source, shard_size: int, tokens: int, seed: int) -> list[Unit]:
    """The units of one source, in shard order (see the module docstring)."""
    common = {"source": source.name, "text_field": source.text_field, "seed": seed}
    if source.generator or source.hf:
        hf = (source.hf.dataset, source.hf.config, source.hf.split) if source.hf else None
        return [Unit(**common, shard=0, kind="generator" if source.generator else "hf", generator=source.generator or "",
                     hf=hf, tokens=tokens, size=4 * tokens)]
    units: list[Unit] = []
    texts: list[str] = []
    text_bytes = 0

    def flush_texts() -> None:
        nonlocal texts, text_bytes
        if texts:
            units.append(Unit(**common, shard=len(units), kind="text", files=tuple(texts), size=text_bytes))
            texts, text_bytes = [], 0

    for path in sorted({f for pattern in source.files for f in glob.glob(pattern)}):
        fmt, size = file_format(path, source.format), os.path.getsize(path)
        if fmt == "jsonl":
            flush_texts()
            for start in range(0, size, shard_size):
                units.append(Unit(**common, shard=len(units), kind="jsonl", path=path, start=start,
                                  stop=min(size, start + shard_size), size=min(size, start + shard_size) - start))
        elif fmt == "parquet":
            flush_texts()
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path).metadata
            first, acc = 0, 0
            for g in range(meta.num_row_groups):
                acc += meta.row_group(g).total_byte_size
                if acc >= shard_size or g == meta.num_row_groups - 1:
                    units.append(Unit(**common, shard=len(units), kind="parquet", path=path, start=first, stop=g + 1,
                                      size=acc))
                    first, acc = g + 1, 0
        else:
            texts.append(path)
            text_bytes += size
            if text_bytes >= shard_size:
                flush_texts()
    flush_texts()
    return units


def _count_lines_before(path: str, offset: int) -> int:
    n = 0
    with open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(offset, 1 << 24))
            n += chunk.count(b"\n")
            offset -= len(chunk)
    return n


def _jsonl(unit: Unit) -> Iterator[tuple[str, int]]:
    with open(unit.path, "rb") as f:
        if unit.start:
            f.seek(unit.start - 1)
            f.readline()  # the line that starts before this unit belongs to the previous one
        pos = last = begin = f.tell()
        lineno = 0
        while pos < unit.stop:
            line = f.readline()
            if not line:
                break
            lineno += 1
            pos = f.tell()
            if not line.strip():
                continue
            try:
                text = json.loads(line)[unit.text_field]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                where = _count_lines_before(unit.path, begin) + lineno
                raise DataError(f"{unit.path}:{where}: not a JSON object with a string {unit.text_field!r} "
                                f"field") from None
            yield text, pos - last
            last = pos


def _parquet(unit: Unit) -> Iterator[tuple[str, int]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(unit.path)
    if unit.text_field not in pf.schema_arrow.names:
        raise DataError(f"{unit.path}: parquet file has no column {unit.text_field!r}")
    for g in range(unit.start, unit.stop):
        size = pf.metadata.row_group(g).total_byte_size
        rows = pf.read_row_group(g, columns=[unit.text_field]).column(0).to_pylist()
        for i, text in enumerate(rows):
            yield text or "", size if i == len(rows) - 1 else 0


def _generated(unit: Unit) -> Iterator[tuple[str, int]]:
    if unit.generator == "python-stdlib":
        files = [str(p) for p in python_stdlib_files()]
        random.Random(f"{unit.seed}:{unit.source}:0").shuffle(files)
        for path in files:
            yield Path(path).read_text(errors="replace"), 0
    elif unit.generator:
        yield from ((doc, 0) for doc in documents(unit.generator, unit.seed))
    else:
        try:
            from datasets import load_dataset

            dataset, config, split = unit.hf
            rows = load_dataset(dataset, config, split=split, streaming=True)
            for row in rows:
                yield row[unit.text_field], 0
        except (ImportError, OSError, ValueError) as e:
            raise DataError(f"source {unit.source}: cannot stream {unit.hf[0]} ({type(e).__name__}: {e})") from None


def unit_documents(unit: Unit) -> Iterator[tuple[str, int]]:
    """(document text, input bytes it completes) for every document of a unit, in order."""
    if unit.kind == "jsonl":
        return _jsonl(unit)
    if unit.kind == "parquet":
        return _parquet(unit)
    if unit.kind == "text":
        return ((Path(p).read_text(errors="replace"), os.path.getsize(p)) for p in unit.files)
    return _generated(unit)


_worker: dict[str, Any] = {}


def encoder(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    """Token ids of a batch of documents, no special tokens: the same ids as `tokenizer(texts,
    add_special_tokens=False)`, through the Rust tokenizer's encode_batch_fast when there is one (it skips the
    offsets transformers computes and drops: ~1.4x the rate, measured)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):
        return lambda texts: [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return lambda texts: tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


def _init_worker(tokenizer: Any, queue: Any, parent: int) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker.update(tokenizer=tokenizer, queue=queue, parent=parent)


def tokenize_unit(unit: Unit, out: str, dtype: str) -> tuple[int, int]:
    """Write one unit's shard; returns (documents, tokens). Runs in a worker process."""
    tokenizer, queue = _worker["tokenizer"], _worker.get("queue")
    eos, encode = tokenizer.eos_token_id, encoder(tokenizer)
    writer = IndexedWriter(Path(out) / unit.prefix, np.dtype(dtype))
    budget = unit.tokens if unit.kind in ("generator", "hf") else None
    texts: list[str] = []
    text_bytes = consumed = reported = 0

    def flush() -> None:
        nonlocal texts, text_bytes, consumed, reported
        for ids in encode(texts) if texts else []:
            ids.append(eos)
            writer.add_document(np.asarray(ids, dtype=writer.dtype))
        done = consumed if budget is None else 4 * writer.tokens  # generated units count 4 bytes per token
        if queue is not None and done > reported:
            queue.put(done - reported)
            reported = done
        texts, text_bytes = [], 0
        if os.getppid() != _worker["parent"]:
            os._exit(1)  # the prepare that started this worker is gone: stop rather than linger

    try:
        for text, size in unit_documents(unit):
            texts.append(text)
            text_bytes += len(text)
            consumed += size
            if budget is not None and (len(texts) >= 64 or text_bytes >= 1 << 16) or \
                    text_bytes >= BATCH_BYTES or len(texts) >= 4096:
                flush()
                if budget is not None and writer.tokens >= budget:
                    break
        flush()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return len(writer.lengths), writer.tokens


def _inputs(units: list[Unit]) -> list[dict[str, Any]]:
    paths = sorted({p for u in units for p in ((u.path,) if u.path else u.files)})
    return [{"path": p, "bytes": os.path.getsize(p), "mtime_ns": os.stat(p).st_mtime_ns} for p in paths]


def _done(out: Path, unit: Unit) -> bool:
    try:
        IndexedDataset(out / unit.prefix)
        return True
    except DataError:
        return False


def _source_plan(units: list[Unit], identity: dict[str, Any], dtype: np.dtype, shard_size: int) -> dict[str, Any]:
    return {"tokenizer": identity["sha256"], "dtype": dtype.name, "shard_size": shard_size,
            "units": [asdict(u) | {"hf": list(u.hf) if u.hf else None, "files": list(u.files)} for u in units],
            "inputs": _inputs(units)}


def _remove_stale_temporaries(folder: Path) -> None:
    for tmp in folder.glob(".shard-*.tmp-*"):
        pid = tmp.name.split(".tmp-")[1].split("-")[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
            tmp.unlink(missing_ok=True)


def prepare(config: Any, out: str | Path, workers: int | None = None, only: list[str] | None = None,
            shard_size: int = SHARD_SIZE, progress: ProgressFn | None = None) -> PrepareSummary:
    """Tokenize the config's sources (or `only` those) into `out`; see the module docstring."""
    from transformers import AutoTokenizer

    from growth.checkpoint import Checkpoint

    t0 = time.perf_counter()
    out = Path(out).absolute()
    stages = resolve_stages(config.data.mixtures, config.data.sources)
    by_name: dict[str, Source] = {}
    for st in stages:
        for s in st.sources:
            by_name.setdefault(s.name, s)
    if only:
        unknown = sorted(set(only) - set(by_name))
        if unknown:
            raise ConfigError(f"--sources names {', '.join(unknown)}, which the config's mixtures do not use "
                              f"(they use: {', '.join(by_name)})")
    selected = [by_name[n] for n in (only or by_name)]
    already = [s.name for s in selected if s.prepared]
    if already and only:
        raise ConfigError(f"source(s) {', '.join(already)} already list prepared data (data.sources.NAME.prepared); "
                          f"there is nothing to tokenize")
    selected = [s for s in selected if not s.prepared]
    if not selected:
        raise ConfigError("every source of the config already lists prepared data; there is nothing to tokenize")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if shard_size < 1:
        raise ConfigError(f"the shard size must be positive, got {shard_size}")

    parent = Checkpoint.open(config.path(config.model))
    tokenizer = AutoTokenizer.from_pretrained(str(parent.path))
    if tokenizer.eos_token_id is None:
        raise DataError(f"the tokenizer of {parent.path} has no eos_token; documents need one to end them")
    identity, dtype = tokenizer_identity(tokenizer), token_dtype(len(tokenizer))
    manifest: dict[str, Any] = {"format": FORMAT, "tokenizer": identity, "dtype": dtype.name, "sources": {}}
    if (out / MANIFEST).exists():
        manifest = read_manifest(out)
        if manifest["tokenizer"]["sha256"] != identity["sha256"]:
            raise DataError(f"{out} holds data prepared with another tokenizer ({manifest['tokenizer']['name_or_path']}"
                            f"); choose another --out")

    drawn = drawn_tokens(stages)
    held_out = config.data.validation.sequences * config.seq_len if config.data.validation.every else 0
    plans: dict[str, list[Unit]] = {}
    for s in selected:  # every source planned (and refused) before anything is written
        want = int(drawn[s.name] * 1.01) + held_out + 2 * config.seq_len
        plans[s.name] = plan_units(s, shard_size, want, config.data.seed)
        if all(u.size == 0 for u in plans[s.name]):
            raise DataError(f"source {s.name}: its files are empty")
    notes: list[str] = []
    for name, src_units in plans.items():
        plan = _source_plan(src_units, identity, dtype, shard_size)
        folder = out / name
        old = folder / PLAN
        if old.exists() and json.loads(old.read_text()) != plan:
            if name in manifest["sources"]:
                del manifest["sources"][name]
                write_json(out / MANIFEST, manifest)
            shutil.rmtree(folder)
            notes.append(f"{name}: its inputs or settings changed since the last prepare; redone whole")
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(folder)
        write_json(old, plan)
    units = [u for src_units in plans.values() for u in src_units]

    pending = sorted((u for u in units if not _done(out, u)), key=lambda u: -u.size)
    workers = min(workers or os.cpu_count() or 1, max(1, len(pending)))
    total = sum(u.size for u in pending)
    if progress:
        progress(0, total)
    _run(pending, out, dtype, tokenizer, workers, progress, total)

    summaries = []
    for s in selected:
        shards = [u for u in units if u.source == s.name]
        opened = [IndexedDataset(out / u.prefix) for u in shards]
        docs, tokens = sum(d.sequences for d in opened), sum(d.num_tokens for d in opened)
        if not docs:
            raise DataError(f"source {s.name}: its inputs hold no documents")
        manifest["sources"][s.name] = {
            "documents": docs, "tokens": tokens, "category": s.category, "dataset_tokens_b": s.dataset_tokens_b,
            "shards": [{"prefix": u.prefix, "documents": d.sequences, "tokens": d.num_tokens, **d.nbytes()}
                       for u, d in zip(shards, opened)],
            "inputs": json.loads((out / s.name / PLAN).read_text())["inputs"],
            "generated": bool(s.generator), "hf": s.hf.dataset if s.hf else None}
        summaries.append(SourceSummary(s.name, docs, tokens, len(shards), sum(u.size for u in shards),
                                       drawn[s.name], s.dataset_tokens_b))
    write_json(out / MANIFEST, manifest)
    return PrepareSummary(out, summaries, len(units), len(units) - len(pending), workers,
                          time.perf_counter() - t0, notes)


def _run(pending: list[Unit], out: Path, dtype: np.dtype, tokenizer: Any, workers: int,
         progress: ProgressFn | None, total: int) -> None:
    """Tokenize the pending units in `workers` forked processes, reporting input bytes done."""
    if not pending:
        return
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else "spawn")
    queue = ctx.Queue()
    done = 0
    gc.freeze()  # forked workers then leave the inherited objects alone instead of copying every page the GC touches
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(tokenizer, queue, os.getpid()))
    gc.unfreeze()
    try:
        jobs = [pool.apply_async(tokenize_unit, (u, str(out), dtype.name)) for u in pending]
        while jobs:
            time.sleep(0.05)
            while not queue.empty():
                done += queue.get()
            for job in [j for j in jobs if j.ready()]:
                job.get()  # a worker's DataError (corrupt line, unreadable input) stops the run here
                jobs.remove(job)
            if progress:
                progress(min(done, total), total)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        for folder in {out / u.source for u in pending}:
            _remove_stale_temporaries(folder)
    if progress:
        progress(total, total)
