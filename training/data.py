"""Documents -> tokens -> packed fixed-length sequences, drawn from a weighted mixture, resumable exactly.

Each source is an endless document stream (files reshuffled per epoch from the seed, generators, or a streamed hub
dataset), tokenized with the model's tokenizer with EOS appended after every document, and cut into `seq_len`
sequences (documents run across sequence boundaries; EOS marks where one ends). A stream is keyed by source name, so a
source used in both stages continues where stage 1 left it.

Which source supplies the next sequence is Megatron's blended-dataset rule (training/blend.py), the same sequence by
sequence as prepared data's cached index. The whole state is the per-source counts plus,
per stream, the number of documents consumed and the tokens left over; resuming replays the document streams up to
that point without tokenizing them.

Under torchrun every rank draws the same global batch and keeps its own slice, so any world size sees the same
data as one process. At the card's scale that repeated tokenization would keep the GPUs waiting: such runs read
prepared data instead (`growbench data prepare`, training/loader.py).
"""

from __future__ import annotations

import glob
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from growth.foundation.errors import DataError
from growth.tinytext import documents, python_stdlib_files
from training.blend import next_source, normalized
from training.mixture import Source, Stage


def file_format(path: str, fmt: str) -> str:
    """A file's input format: `fmt`, or by extension when auto (.jsonl/.json, .parquet, else plain text)."""
    if fmt != "auto":
        return fmt
    if path.endswith((".jsonl", ".json")):
        return "jsonl"
    return "parquet" if path.endswith(".parquet") else "text"


def _read_file(path: str, fmt: str, text_field: str) -> Iterator[str]:
    fmt = file_format(path, fmt)
    if fmt == "text":
        yield Path(path).read_text(errors="replace")
    elif fmt == "jsonl":
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)[text_field]
                except (ValueError, KeyError, TypeError):
                    raise DataError(f"{path}:{lineno}: not a JSON object with a {text_field!r} field") from None
    else:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        if text_field not in pf.schema_arrow.names:
            raise DataError(f"{path}: parquet file has no column {text_field!r}")
        for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
            yield from batch.column(0).to_pylist()


def _file_documents(source: Source, files: list[str], seed: int) -> Iterator[str]:
    for epoch in itertools.count():
        order = list(files)
        random.Random(f"{seed}:{source.name}:{epoch}").shuffle(order)
        n = 0
        for path in order:
            for doc in _read_file(path, source.format, source.text_field):
                n += 1
                yield doc
        if n == 0:
            raise DataError(f"source {source.name}: its files hold no documents")


def _hf_documents(source: Source) -> Iterator[str]:
    try:
        from datasets import load_dataset

        ds = load_dataset(source.hf.dataset, source.hf.config, split=source.hf.split, streaming=True)
    except (ImportError, OSError, ValueError) as e:  # no datasets, no such dataset/config/split, offline: one line
        raise DataError(f"source {source.name}: cannot stream {source.hf.dataset} ({type(e).__name__}: {e})") from None
    while True:
        for row in ds:
            yield row[source.text_field]


def document_stream(source: Source, seed: int) -> Iterator[str]:
    """An endless, deterministic stream of one source's documents."""
    if source.generator == "python-stdlib":
        return _file_documents(source, [str(p) for p in python_stdlib_files()], seed)
    if source.generator:
        return documents(source.generator, seed)
    if source.hf:
        return _hf_documents(source)
    files = sorted({f for pattern in source.files for f in glob.glob(pattern)})
    return _file_documents(source, files, seed)


class TokenStream:
    """One source's tokens, EOS after every document; `take(n)` hands out the next n."""

    def __init__(self, source: Source, tokenizer: Any, seed: int) -> None:
        self.source = source
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token_id
        if self.eos is None:
            raise DataError("the model's tokenizer has no eos_token; packing needs one to separate documents")
        self.docs = document_stream(source, seed)
        self.consumed = 0
        self.buffer: list[int] = []

    def take(self, n: int) -> list[int]:
        while len(self.buffer) < n:
            text = next(self.docs)
            self.consumed += 1
            self.buffer.extend(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
            self.buffer.append(self.eos)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"documents": self.consumed, "buffer": list(self.buffer)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for _ in itertools.islice(self.docs, state["documents"]):
            pass
        self.consumed = state["documents"]
        self.buffer = list(state["buffer"])


class MixtureLoader:
    """Packed sequences for the current stage; `batch(stage, n)` returns an [n, seq_len] LongTensor."""

    def __init__(self, stages: list[Stage], tokenizer: Any, seq_len: int, seed: int) -> None:
        self.stages = stages
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.seed = seed
        self.streams: dict[str, TokenStream] = {}
        self.counts: list[dict[str, int]] = [{s.name: 0 for s in st.sources} for st in stages]

    def _stream(self, source: Source) -> TokenStream:
        if source.name not in self.streams:
            self.streams[source.name] = TokenStream(source, self.tokenizer, self.seed)
        return self.streams[source.name]

    def next_source(self, stage: int) -> Source:
        """The source whose realised share lags its weight the most (Megatron's blending rule)."""
        st, counts = self.stages[stage], self.counts[stage]
        weights = normalized([s.weight for s in st.sources])
        return st.sources[next_source(weights, [counts[s.name] for s in st.sources])]

    def batch(self, stage: int, n: int) -> torch.Tensor:
        rows = []
        for _ in range(n):
            source = self.next_source(stage)
            rows.append(self._stream(source).take(self.seq_len))
            self.counts[stage][source.name] += 1
        return torch.tensor(rows, dtype=torch.long)

    def tokens_by_source(self) -> list[dict[str, int]]:
        return [{k: v * self.seq_len for k, v in c.items()} for c in self.counts]

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "on-the-fly", "seed": self.seed, "seq_len": self.seq_len, "counts": [dict(c) for c in self.counts],
                "streams": {k: s.state_dict() for k, s in self.streams.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["seed"] != self.seed or state["seq_len"] != self.seq_len:
            raise DataError(f"the checkpoint's data state has seed {state['seed']} and seq_len {state['seq_len']}; "
                            f"the config asks for {self.seed} and {self.seq_len}")
        self.counts = [dict(c) for c in state["counts"]]
        by_name = {s.name: s for st in self.stages for s in st.sources}
        for name, s in state["streams"].items():
            if name not in by_name:
                raise DataError(f"the checkpoint's data state has source {name}, which the mixture no longer has")
            self._stream(by_name[name]).load_state_dict(s)
