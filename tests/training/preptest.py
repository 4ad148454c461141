"""Helpers shared by the prepared-data tests: a small corpus of every input kind, its mixture and train config."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from traintest import write_config

from growth.tinytext import documents


def write_corpus(folder: Path, jsonl_docs: int = 120) -> dict[str, list[str]]:
    """JSONL, plain-text and parquet inputs of real (generated) text; returns each source's documents in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    prose = list(documents("prose", 11, jsonl_docs))
    (folder / "web.jsonl").write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(prose)))
    code = list(documents("code", 12, 3))
    for i, d in enumerate(code):
        (folder / f"code-{i}.txt").write_text(d)
    maths = list(documents("math", 13, 30))
    pq.write_table(pa.table({"content": maths}), folder / "math.parquet", row_group_size=10)
    return {"web": prose, "code": code, "maths": maths}


def write_mixture(folder: Path) -> Path:
    """Two stages over the corpus's sources plus a generated one; `web` is in both stages."""
    mix = folder / "mix.yaml"
    mix.write_text(yaml.safe_dump({"name": "m", "stages": [
        {"name": "one", "tokens": 512, "sources": [
            {"name": "web", "weight": 3, "files": ["corpus/web.jsonl"], "dataset_tokens_b": 0.00001},
            {"name": "code", "weight": 1, "files": ["corpus/code-*.txt"]},
            {"name": "maths", "weight": 1, "files": ["corpus/math.parquet"], "text_field": "content"}]},
        {"name": "two", "tokens": 256, "sources": [
            {"name": "web", "weight": 1, "files": ["corpus/web.jsonl"]},
            {"name": "story", "weight": 1, "generator": "prose"}]}]}))
    return mix


def write_train_config(folder: Path, model: Path, name: str = "run", **over) -> Path:
    """A tiny run on the corpus's mixture: 4 x 16-token sequences per step (2 per micro-batch), one CPU thread."""
    data = {"mixtures": [str(folder / "mix.yaml")], **over.pop("data", {})}
    return write_config(folder, model, name, seq_len=16, max_steps=over.pop("max_steps", None),
                        checkpoint={"every": 4, **over.pop("checkpoint", {})}, data=data, **over)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every shard file under a prepared folder, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("shard-*"))}
