"""`growbench merge`: lineage in DuckDB, mergekit export, user errors as one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import yaml

from growth.checkpoint import Checkpoint
from growth.fixture import TinySpec, make_tiny
from suite.store import Store
from suite.store.queries import find_models


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> list[Path]:
    return [tiny_model, make_tiny(tmp_path_factory.mktemp("cli-inputs") / "s1", TinySpec(seed=1))]


def test_merge_registers_lineage_and_exports_mergekit(cli: Callable[..., int], pair: list[Path], tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    out = tmp_path / "merged"
    assert cli("merge", str(out), "--model", f"{pair[0]}:1", "--model", f"{pair[1]}:3",
                "--dtype", "bf16", "--export-mergekit", str(tmp_path / "mk.yaml"), "--db", str(db)) == 0
    row = find_models(Store(db), str(out))[0]
    parents = [Checkpoint.open(p).fingerprint() for p in pair]
    assert row["kind"] == "merged" and json.loads(row["parents"]) == parents
    assert row["model_id"] == Checkpoint.open(out).fingerprint()
    assert json.loads(row["merge"])["models"][1]["weight"] == 0.75
    exported = yaml.safe_load((tmp_path / "mk.yaml").read_text())
    assert exported["out_dtype"] == "bfloat16" and exported["parameters"] == {"normalize": True}
    assert [m["parameters"]["weight"] for m in exported["models"]] == [1.0, 3.0]


@pytest.mark.parametrize("args, message", [
    (["--model", "{a}:0.5", "--model", "{missing}:0.5"], "does not exist"),
    (["--model", "{a}:0.5", "--model", "{wide}:0.5"], "cannot merge: tensor 'model.layers.0.mlp.gate_proj.weight'"),
    (["--model", "{a}:0.5", "--model", "{b}:-0.5", "--no-normalize"], "negative; pass --allow-negative"),
    (["--model", "{a}:0.5", "--model", "{b}:0.2", "--no-normalize"], "sum to 0.7, not 1"),
    (["--recipe", "{recipe}", "--model", "{a}:1"], "either --recipe FILE or"),
    (["--recipe", "{recipe}"], "unknown parameter 'bogus'"),
])
def test_errors_one_line_exit_2_nothing_written(cli: Callable[..., int], pair: list[Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    wide = tmp_path / "wide"
    if "{wide}" in " ".join(args):
        make_tiny(wide, TinySpec(ffn=384))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"bogus": 1, "models": [{"path": str(pair[0]), "weight": 1}]}))
    names = {"a": pair[0], "b": pair[1], "missing": tmp_path / "missing", "wide": wide, "recipe": recipe}
    out = tmp_path / "out"
    capsys.readouterr()
    code = cli("merge", str(out), *[a.format(**names) for a in args], "--export-mergekit",
                str(tmp_path / "mk.yaml"), "--db", str(tmp_path / "r.duckdb"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    assert not out.exists() and not (tmp_path / "mk.yaml").exists() and not (tmp_path / "r.duckdb").exists()
    assert not list(tmp_path.glob(".out*"))
