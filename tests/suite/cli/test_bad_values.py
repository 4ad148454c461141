"""Bad values stop at the front door: each is one line on stderr and exit 2, before anything loads or is stored (the
results database unchanged, or not created when absent), for every command that takes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_store import add_model, add_sampled_run

from suite.store import Store

PIQA = ('{"results": {"piqa": {"acc,none": 0.5, "acc_norm,none": 0.5}}, "configs": {}, "n-shot": {"piqa": 5}}')

# (arguments, a phrase of the one error line); {db} is the store, {ckpt} a real checkpoint, {tmp} a scratch folder.
READERS = [
    (["compare", "a", "a"], "are the same model"),
    (["compare", "a", "{ckpt_a}"], "are the same model"),
    (["compare", "a", "b", "--alpha", "2"], "--alpha must be between"),
    (["compare", "a", "b", "--adjust", "nosuch"], "unknown --adjust"),
    (["compare", "a", "b", "--pick", "nosuch"], "unknown pick"),
    (["leaderboard", "--format", "nosuch"], "use one of"),
    (["leaderboard", "--marks", "nosuch"], "nosuch"),
    (["leaderboard", "--pick", "nosuch"], "unknown pick"),
    (["leaderboard", "--out", "{tmp}"], "is a folder"),
    (["leaderboard", "--reported", "nosuch"], "unknown reported set"),
    (["regress", "--model", "a", "--against", "model:a"], "is the model under test"),
    (["regress", "--model", "a", "--against", "nosuch"], "use reported:NAME"),
    (["regress", "--model", "a", "--against", "model:b", "--pick", "nosuch"], "unknown pick"),
    (["plot", "run", "nosuch", "--out", "{tmp}/x.png"], "no training run 'nosuch'"),
    (["plot", "run", "nosuch", "--out", "{tmp}/x.pdf"], "ending in .png"),
    (["plot", "compare", "a", "--out", "{tmp}"], "is a folder"),
    (["report", "{tmp}/page.txt"], "ending in .html"),
    (["report", "{tmp}/page.html", "--run", "nosuch"], "no training run 'nosuch'"),
]
WRITERS = [
    (["eval", "{ckpt_a}", "--limit", "-1"], "limit must be at least 1"),
    (["eval", "{ckpt_a}", "--limit", "0"], "limit must be at least 1"),
    (["eval", "{ckpt_a}", "--batch-size", "abc"], "batch_size must be auto or a number"),
    (["eval", "{ckpt_a}", "--batch-size", "0"], "batch_size must be auto or a number of at least 1"),
    (["eval", "{ckpt_a}", "--data-dir", "{tmp}/nonexistent"], "is not a folder"),
    (["eval", "{ckpt_a}", "--suite", "tiny-builtin", "--dtype", "nosuch"], "unsupported dtype"),
    (["eval", "{ckpt_a}", "--suite", "tiny-builtin", "--backend", "nosuch"], "unknown backend"),
    (["eval", "{ckpt_a}", "--suite", "tiny-builtin", "-b", "nosuch"], "unknown benchmark"),
    (["eval", "{ckpt_a}", "--suite", "nosuch"], "unknown suite"),
    (["eval", "{tmp}/nosuch", "--suite", "tiny-builtin"], "does not exist"),
    (["eval", "{tmp}/empty", "--suite", "tiny-builtin"], "config.json"),
    (["sweep", "{ckpt_a}", "--limit", "0"], "limit must be at least 1"),
    (["sweep", "{ckpt_a}", "--suite", "tiny-builtin", "--shard", "2/2"], "--shard must be i/N"),
    (["sweep", "{ckpt_a}", "--suite", "tiny-builtin", "--shard", "x"], "--shard must be i/N"),
    (["sweep", "{ckpt_a}", "--suite", "tiny-builtin", "--workers", "0"], "--workers must be at least 1"),
    (["sweep", "{ckpt_a}", "--suite", "tiny-builtin", "--devices", "a,b"], "--devices takes"),
    (["sweep", "{ckpt_a}", "--suite", "tiny-builtin", "--executor", "nosuch"], "unknown executor"),
    (["sweep", "{ckpt_a}", "--data-dir", "{tmp}/nonexistent"], "is not a folder"),
    (["select", "--run", "nosuch"], "no training run 'nosuch'"),
    (["select", "--models", "a", "--strategy", "nosuch"], "unknown selection strategy"),
    (["select", "--models", "a", "--limit", "0"], "--limit must be at least 1"),
    (["select", "--models", "a", "--build-limit", "0"], "--build-limit must be at least 1"),
    (["select", "--models", "a", "--data-dir", "{tmp}/nonexistent"], "is not a folder"),
    (["ingest", "{tmp}/results_x.json", "--suite", "openseek-mid-v1", "--model", "runs/tiny/nosuch"],
     "does not exist"),
    (["pipeline", "--workdir", "{tmp}/work", "--data-dir", "{tmp}/nonexistent"], "is not a folder"),
    (["merge", "{tmp}/merged", "--model", "{ckpt_a}:x"], "expected PATH:WEIGHT"),
    (["merge", "{tmp}/merged", "--model", "{tmp}/nosuch:1"], "does not exist"),
    (["eval"], "Missing argument"),
    (["compare", "a"], "Missing argument"),
]


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store with two models (a, b) scored document by document in tiny-builtin, and the paths the cases name."""
    root = tmp_path_factory.mktemp("front-door")
    store = Store(root / "results.duckdb")
    ids = [add_model(store, tiny_model, root, name) for name in ("a", "b")]
    for model_id, values in zip(ids, ([1, 0, 1, 1], [0, 0, 1, 1])):
        add_sampled_run(store, model_id, "tiny_cloze", [values])
    (root / "empty").mkdir()
    (root / "results_x.json").write_text(PIQA)
    return {"db": store.path, "tmp": root, "ckpt_a": root / "a"}


def _fingerprint(path: Path) -> tuple[bytes, int] | None:
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None


def _refused(cli, capsys: pytest.CaptureFixture, args: list[str], db: Path, home: dict[str, Path],
             phrase: str = "") -> None:
    before = _fingerprint(db)
    capsys.readouterr()
    code = cli(*(a.format(**home) for a in args), "--db", str(db))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (args, err)
    assert len(lines) == 1 and phrase in lines[0] and "Traceback" not in err, (args, lines)
    assert _fingerprint(db) == before, f"{args} changed {db}"


@pytest.mark.parametrize("args, phrase", READERS, ids=[" ".join(a) for a, _ in READERS])
def test_a_bad_value_for_a_report_is_one_line_and_exit_2(args, phrase, home, cli, capsys) -> None:
    _refused(cli, capsys, args, home["db"], home, phrase)


@pytest.mark.parametrize("args, phrase", WRITERS, ids=[" ".join(a) for a, _ in WRITERS])
def test_a_bad_value_stores_nothing(args, phrase, home, cli, capsys) -> None:
    _refused(cli, capsys, args, home["db"], home, phrase)
    absent = home["tmp"] / "absent.duckdb"
    _refused(cli, capsys, args, absent, home)  # where the missing store is the first thing said, that is fine too
    assert not absent.exists()


def test_a_hub_name_is_still_a_model_for_ingest(home, cli, capsys, tmp_path) -> None:
    db = tmp_path / "ingest.duckdb"
    assert cli("ingest", str(home["tmp"] / "results_x.json"), "--suite", "openseek-mid-v1", "--model",
               "Qwen/Qwen3-4B-Base", "--db", str(db)) == 0, capsys.readouterr().err
    assert Store(db).query("SELECT name FROM models")["name"].tolist() == ["Qwen/Qwen3-4B-Base"]
