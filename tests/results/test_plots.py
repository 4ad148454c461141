"""Plots render real PNGs from stored runs: a training run's curves with a merge marked, and a card comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from results_store import add_model, add_run

from results.plots import plot_compare, plot_run
from results.reported_scores import load_reported
from suite.store import Store
from suite.store.queries import ResultsError, find_models


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Store:
    """Training run r1 with 4 checkpoints on 3 benchmarks, and a merge of its steps 200 and 400."""
    root = tmp_path_factory.mktemp("plots")
    store = Store(root / "results.duckdb")
    ids = []
    for i, step in enumerate((100, 200, 300, 400)):
        training = {"run_id": "r1", "step": step, "tokens": step * 2_000_000, "stage": 1}
        ids.append(add_model(store, tiny_model, root, f"r1-{step}", training=training))
        for j, key in enumerate(("mmlu", "gsm8k", "hellaswag")):
            add_run(store, ids[-1], key, 0.3 + 0.05 * i + 0.1 * j, 0.01 + 0.005 * j)
    merge = {"method": "linear", "models": [{"path": "x", "fingerprint": ids[1], "weight": 0.5},
                                            {"path": "y", "fingerprint": ids[3], "weight": 0.5}]}
    merged = add_model(store, tiny_model, root, "merged-final", merge=merge)
    for key, value in (("mmlu", 0.48), ("gsm8k", 0.52), ("hellaswag", 0.70)):
        add_run(store, merged, key, value, 0.01)
    return store


def _png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def test_run_plot(db: Store, tmp_path: Path) -> None:
    assert find_models(db, "r1@100")[0]["step"] == 100
    out = plot_run(db, "r1", tmp_path / "plots" / "r1.png")
    wide = _png(out)
    narrow = _png(plot_run(db, "r1", tmp_path / "one.png", benchmarks=["gsm8k"]))
    assert wide.shape[1] > narrow.shape[1]  # one panel per benchmark
    assert [p.name for p in out.parent.iterdir()] == ["r1.png"]


def test_compare_plot(db: Store, tmp_path: Path) -> None:
    card = _png(plot_compare(db, "merged-final", load_reported("openseek-mid-v1"), tmp_path / "cmp.png"))
    measured = _png(plot_compare(db, "merged-final", None, tmp_path / "models.png", others=["r1@100", "r1@400"]))
    assert card.shape != measured.shape or not np.array_equal(card, measured)


def test_compare_plot_refuses_a_reported_set_with_no_benchmark_in_common(db: Store, tmp_path: Path, cli,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """A tiny suite's model against the card's 14 benchmarks would be an empty chart: one line instead."""
    import shutil

    from results_store import add_run

    db = Store(shutil.copy(db.path, tmp_path / "own.duckdb"))
    (tiny,) = [m["model_id"] for m in find_models(db, "r1@300")]
    add_run(db, tiny, "tiny_cloze", 0.5, 0.02, suite="tiny-builtin")
    assert cli("plot", "compare", "r1@300", "--suite", "tiny-builtin", "--out", str(tmp_path / "t.png"),
               "--db", str(db.path)) == 2
    assert "share no benchmark" in capsys.readouterr().err and not (tmp_path / "t.png").exists()
    assert cli("plot", "compare", "r1@300", "--models", "r1@100", "--out", str(tmp_path / "m.png"), "--suite",
               "openseek-mid-v1", "--db", str(db.path)) == 0
    _png(tmp_path / "m.png")


def test_plot_errors(db: Store, tmp_path: Path, cli, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ResultsError, match="no checkpoints of training run 'r2' in .*; did you mean r1"):
        plot_run(db, "r2", tmp_path / "x.png")
    with pytest.raises(ResultsError, match="no model 'merged-fnial'.*did you mean merged-final"):
        plot_compare(db, "merged-fnial", load_reported("openseek-mid-v1"), tmp_path / "x.png")
    assert cli("plot", "run", "r9", "--out", str(tmp_path / "x.png"), "--db", str(db.path)) == 2
    assert "no training run 'r9' (a run id or a run folder)" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
