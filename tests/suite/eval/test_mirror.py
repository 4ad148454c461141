"""The offline mirror resolver: hub (dataset, config) -> local split files, with errors that name what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from growth.foundation.errors import DataError
from suite.eval.mirror import resolve


@pytest.mark.parametrize("dataset, config, split, expected", [
    ("allenai/ai2_arc", "ARC-Challenge", "test", "ai2_arc/ARC-Challenge/test.jsonl"),
    ("cais/mmlu", "abstract_algebra", "dev", "mmlu/abstract_algebra/dev.jsonl"),
    ("hails/agieval-lsat-ar", None, "test", "agieval/lsat-ar/test.jsonl"),
    ("Rowan/hellaswag", None, "train", "hellaswag/default/train.jsonl.gz"),
    ("openai/gsm8k", "main", "train", "gsm8k/main/train.jsonl"),
    ("TIGER-Lab/MMLU-Pro", None, "validation", "mmlu_pro/default/validation.jsonl"),
    ("openai/openai_humaneval", None, "test", "humaneval/default/test.jsonl"),
])
def test_resolves_the_shared_mirror(benchmark_mirror: Path, dataset: str, config: str | None, split: str,
                                    expected: str) -> None:
    files = resolve(benchmark_mirror, dataset, config, [split])
    assert files[split] == benchmark_mirror / expected


def test_missing_split_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "gsm8k" / "main").mkdir(parents=True)
    (tmp_path / "gsm8k" / "main" / "train.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match=r"missing split 'test'.*gsm8k/main/test\.jsonl"):
        resolve(tmp_path, "openai/gsm8k", "main", ["train", "test"])


def test_missing_dataset_and_missing_mirror(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no allenai/ai2_arc \\(ARC-Easy\\); looked for"):
        resolve(tmp_path, "allenai/ai2_arc", "ARC-Easy")
    with pytest.raises(DataError, match="does not exist"):
        resolve(tmp_path / "nowhere", "openai/gsm8k", "main")
