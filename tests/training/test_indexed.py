"""The Megatron indexed dataset format both ways, against megatron-core itself: what we write its IndexedDataset
reads, what its IndexedDatasetBuilder writes we read; a truncated or missing file is a one-line DataError."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from growth.foundation.errors import DataError
from training.indexed import IndexedDataset, IndexedWriter, token_dtype


def megatron():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets import indexed_dataset
    return indexed_dataset


def documents(n: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=rng.integers(1, 40)) for _ in range(n)]


@pytest.mark.parametrize("vocab", [1024, 151_936])
def test_megatron_reads_what_we_write(tmp_path, vocab):
    docs = documents(50, vocab)
    writer = IndexedWriter(tmp_path / "ours", token_dtype(vocab))
    for d in docs:
        writer.add_document(d)
    writer.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.bin", "ours.idx"]  # no temporaries left
    theirs = megatron().IndexedDataset(str(tmp_path / "ours"))
    assert theirs.index.dtype == megatron().DType.optimal_dtype(vocab) == token_dtype(vocab)
    assert len(theirs) == len(docs)
    assert list(theirs.document_indices) == list(range(len(docs) + 1))
    for i, d in enumerate(docs):
        np.testing.assert_array_equal(theirs[i], d)


def test_we_read_what_megatron_writes(tmp_path):
    md = megatron()
    docs = documents(40, 151_936, seed=1)
    builder = md.IndexedDatasetBuilder(str(tmp_path / "theirs.bin"), dtype=np.int32)
    for d in docs:
        builder.add_document(torch.tensor(d), [len(d)])
    builder.finalize(str(tmp_path / "theirs.idx"))
    ours = IndexedDataset(tmp_path / "theirs")
    assert ours.dtype == np.int32 and ours.sequences == len(docs)
    assert ours.num_tokens == sum(len(d) for d in docs)
    np.testing.assert_array_equal(ours.tokens(0, ours.num_tokens), np.concatenate(docs))
    for i, d in enumerate(docs):
        np.testing.assert_array_equal(ours.sequence(i), d)


def test_missing_truncated_and_foreign_files_are_one_line_errors(tmp_path):
    writer = IndexedWriter(tmp_path / "x", np.uint16)
    for d in documents(10, 1000):
        writer.add_document(d)
    writer.commit()
    bin_path, idx_path = tmp_path / "x.bin", tmp_path / "x.idx"
    full = bin_path.read_bytes()
    bin_path.write_bytes(full[:-6])
    with pytest.raises(DataError, match=r"x\.bin has \d+ bytes where its index announces \d+: truncated"):
        IndexedDataset(tmp_path / "x")
    bin_path.write_bytes(full)
    idx = idx_path.read_bytes()
    idx_path.write_bytes(idx[:40])
    with pytest.raises(DataError, match=r"x\.idx is truncated"):
        IndexedDataset(tmp_path / "x")
    idx_path.write_bytes(b"not an index" + idx[12:])
    with pytest.raises(DataError, match="no MMIDIDX header"):
        IndexedDataset(tmp_path / "x")
    idx_path.unlink()
    with pytest.raises(DataError, match=r"x\.idx is missing"):
        IndexedDataset(tmp_path / "x")
