"""`growbench data prepare`: the tokens the on-the-fly loader would make, in Megatron indexed datasets that
megatron-core reads; the same bytes for any number of workers; a killed prepare resumes keeping its finished shards;
changed inputs are redone; bad input is one line, exit 2, and no manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import warnings

import numpy as np
import pytest
from preptest import tree_bytes, write_corpus, write_mixture, write_train_config
from traintest import REPO, cli

from growth.foundation.errors import DataError
from training.config import load_config
from training.indexed import IndexedDataset
from training.prepare import prepare
from training.prepared import MANIFEST, read_manifest, tokenizer_identity

SHARD = 2048  # bytes of input per shard: the JSONL file is cut into several line-aligned units


@pytest.fixture
def setup(tmp_path, tiny_model):
    docs = write_corpus(tmp_path / "corpus")
    write_mixture(tmp_path)
    return load_config(write_train_config(tmp_path, tiny_model)), docs


def source_documents(out, name) -> list[list[int]]:
    manifest = read_manifest(out)
    return [d.sequence(i).tolist() for shard in manifest["sources"][name]["shards"]
            for d in [IndexedDataset(out / shard["prefix"])] for i in range(d.sequences)]


def test_prepare_tokenizes_as_the_loader_does_and_megatron_reads_it(tmp_path, setup, tiny_model):
    from transformers import AutoTokenizer

    from growth.tinytext import documents

    config, docs = setup
    out = tmp_path / "prepared"
    summary = prepare(config, out, workers=2, shard_size=SHARD)
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    eos = tok.eos_token_id
    for name, texts in docs.items():
        expected = [tok(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]
        assert source_documents(out, name) == expected, name
    story = source_documents(out, "story")
    assert story == [tok(t, add_special_tokens=False)["input_ids"] + [eos]
                     for t in documents("prose", config.data.seed, len(story))]
    assert sum(map(len, story)) >= 128 * 1.01  # as many tokens as the mixture draws from a generated source
    manifest = read_manifest(out)
    assert manifest["tokenizer"] == tokenizer_identity(tok) and manifest["dtype"] == "uint16"
    web = manifest["sources"]["web"]
    assert len(web["shards"]) > 3 and web["inputs"][0]["bytes"] == (tmp_path / "corpus/web.jsonl").stat().st_size
    assert {s.name: s.documents for s in summary.sources} == {
        "web": 120, "code": 3, "maths": 30, "story": len(story)}
    by_name = {s.name: s for s in summary.sources}
    assert by_name["web"].drawn_tokens == pytest.approx(512 * 3 / 5 + 256 / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDataset as Megatron
    for entry in manifest["sources"].values():
        for shard in entry["shards"]:
            theirs, ours = Megatron(str(out / shard["prefix"])), IndexedDataset(out / shard["prefix"])
            assert len(theirs) == ours.sequences == shard["documents"]
            for i in range(len(theirs)):
                np.testing.assert_array_equal(theirs[i], ours.sequence(i))


def test_workers_do_not_change_the_bytes(tmp_path, setup):
    config, _ = setup
    prepare(config, tmp_path / "one", workers=1, shard_size=SHARD)
    prepare(config, tmp_path / "two", workers=2, shard_size=SHARD)
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")


def test_killed_prepare_keeps_finished_shards_and_redoes_the_rest(tmp_path, setup):
    config, _ = setup
    out = tmp_path / "prepared"
    first = prepare(config, out, workers=2, shard_size=SHARD)
    straight = tree_bytes(out)
    (out / MANIFEST).unlink()  # as if killed: no manifest, two shards unfinished, a dead worker's temporary left
    for name in ("web/shard-00002", "maths/shard-00001"):
        (out / f"{name}.idx").unlink()
    (out / "web/shard-00002.bin").write_bytes(b"partial")
    (out / "web/.shard-00003.bin.tmp-999999999-deadbeef").write_bytes(b"half")
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("shard-*.idx")}
    again = prepare(config, out, workers=2, shard_size=SHARD)
    assert again.skipped == first.units - 2
    assert tree_bytes(out) == straight and (out / MANIFEST).exists()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert not list(out.rglob(".*tmp-*"))


def test_killed_cli_run_resumes_to_the_same_bytes(tmp_path, setup):
    config, _ = setup
    straight = tmp_path / "straight"
    prepare(config, straight, workers=1, shard_size=1024)
    out = tmp_path / "killed"
    args = cli("data", "prepare", "--config", str(tmp_path / "run.yaml"), "--out", str(out), "--workers", "1",
               "--shard-size", "1KiB")
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and len(list(out.rglob("shard-*.idx"))) < 3:
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    time.sleep(0.5)  # the orphaned worker notices its parent is gone and exits
    killed_before_the_end = not (out / MANIFEST).exists()
    prepare(config, out, workers=1, shard_size=1024)
    assert tree_bytes(out) == tree_bytes(straight)
    print(f"killed before the manifest: {killed_before_the_end}")


def test_changed_inputs_are_redone(tmp_path, setup):
    config, _ = setup
    out = tmp_path / "prepared"
    prepare(config, out, workers=1, shard_size=SHARD)
    web = tmp_path / "corpus/web.jsonl"
    web.write_text(web.read_text() + json.dumps({"text": "one more document"}) + "\n")
    summary = prepare(config, out, workers=1, shard_size=SHARD)
    assert summary.notes == ["web: its inputs or settings changed since the last prepare; redone whole"]
    assert {s.name: s.documents for s in summary.sources}["web"] == 121
    prepare(config, tmp_path / "fresh", workers=1, shard_size=SHARD)
    assert tree_bytes(out) == tree_bytes(tmp_path / "fresh")


def one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def test_bad_input_is_one_line_exit_2_and_no_manifest(tmp_path, setup, cli, capsys, tiny_model):
    from growth.fixture import TinySpec, make_tiny

    config_path = tmp_path / "run.yaml"
    web = tmp_path / "corpus/web.jsonl"
    lines = web.read_text().splitlines(keepends=True)
    lines[100] = '{"text": "cut off\n'
    web.write_text("".join(lines))
    out = tmp_path / "prepared"
    code = cli("data", "prepare", "--config", str(config_path), "--out", str(out), "--shard-size", "2KiB")
    assert one_line(capsys, code) == f"error: {web}:101: not a JSON object with a string 'text' field"
    assert not (out / MANIFEST).exists() and not list(out.rglob(".*tmp-*"))
    lines[100] = '{"text": "fixed"}\n'
    web.write_text("".join(lines))

    code = cli("data", "prepare", "--config", str(config_path), "--out", str(out), "--sources", "web,nope")
    assert "--sources names nope, which the config's mixtures do not use" in one_line(capsys, code)

    (tmp_path / "corpus/empty.jsonl").write_text("")
    mix = tmp_path / "empty-mix.yaml"
    mix.write_text("name: e\nstages: [{name: s, tokens: 64, sources: [{name: e, weight: 1, "
                   "files: [corpus/empty.jsonl]}]}]\n")
    empty = write_train_config(tmp_path, tiny_model, "empty", data={"mixtures": [str(mix)]})
    code = cli("data", "prepare", "--config", str(empty), "--out", str(tmp_path / "e"))
    assert one_line(capsys, code) == "error: source e: its files are empty"
    assert not (tmp_path / "e").exists()  # refused before anything was written

    assert cli("data", "prepare", "--config", str(config_path), "--out", str(out), "--sources", "code") == 0
    other = make_tiny(tmp_path / "other", TinySpec(vocab=600))
    code = cli("data", "prepare", "--config", str(config_path), "--out", str(out), "--model", str(other))
    assert "holds data prepared with another tokenizer" in one_line(capsys, code)


def test_data_inspect_prints_sources_and_a_decoded_sample(tmp_path, setup, cli, capsys):
    config, docs = setup
    out = tmp_path / "prepared"
    prepare(config, out, workers=1, shard_size=SHARD)
    capsys.readouterr()
    assert cli("data", "inspect", str(out), "--source", "web", "--document", "2", "--tokens", "1000") == 0
    printed = capsys.readouterr().out
    assert "web" in printed and "120" in printed and "maths" in printed
    assert docs["web"][2].split()[0] in printed and docs["web"][2].split()[-1] in printed
    assert cli("data", "inspect", str(out / "code" / "shard-00000"), "--tokens", "5") == 0
    assert "shard-00000" in capsys.readouterr().out
    with pytest.raises(DataError, match="neither a prepared directory"):
        from training.prepared import describe

        describe(tmp_path / "corpus")
