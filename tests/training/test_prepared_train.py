"""Training on prepared data end to end: a run killed after k steps resumes to the straight run's losses and weights
bit for bit; 2 processes match 1 (same global batches, same held-out losses); the stage switch; the held-out loss
per source and the TensorBoard and W&B (offline) files read back; Megatron data trains unchanged; and every bad
prepared input is one line, exit 2, before the run starts."""

from __future__ import annotations

import glob
import json
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from preptest import write_corpus, write_mixture, write_train_config
from traintest import REPO, losses, run_and_kill

from growth.checkpoint import Checkpoint
from training.config import load_config
from training.indexed import IndexedWriter
from training.prepare import prepare
from training.prepared import MANIFEST
from training.trainer import train


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_model):
    """The corpus's mixture prepared once for the module; tests copy the folder when they damage it."""
    folder = tmp_path_factory.mktemp("prepared-run")
    write_corpus(folder / "corpus")
    write_mixture(folder)
    config = write_train_config(folder, tiny_model, data={"validation": {"every": 2, "sequences": 2}})
    prepare(load_config(config), folder / "tokens", workers=2, shard_size=4096)
    return folder


def config_for(tmp_path, prepared, tiny_model, name="run", **over):
    data = {"mixtures": [str(prepared / "mix.yaml")], "prepared": str(prepared / "tokens"),
            "validation": {"every": 2, "sequences": 2}, **over.pop("data", {})}
    return write_train_config(tmp_path, tiny_model, name, data=data, **over)


def test_killed_run_resumes_bit_for_bit_and_stages_switch(tmp_path, prepared, tiny_model):
    steps = 12  # stage one: 512 tokens = 8 steps of 64; stage two: 4 steps
    ref = config_for(tmp_path, prepared, tiny_model, "ref", checkpoint={"every": 2})
    train(load_config(ref))
    rows = [json.loads(x) for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["one"] * 8 + ["two"] * 4
    assert set(rows[-1]["mixture"]) == {"web", "story"} and rows[7]["mixture"] == pytest.approx(
        {"web": 0.6, "code": 0.2, "maths": 0.2}, abs=1 / 32)
    record = json.loads((tmp_path / "ref/checkpoints/step-000012/training.json").read_text())
    assert record["tokens_by_source"] == [{"web": 19 * 16, "code": 7 * 16, "maths": 6 * 16},
                                         {"web": 8 * 16, "story": 8 * 16}]

    config = config_for(tmp_path, prepared, tiny_model, "killed", checkpoint={"every": 2})
    run = tmp_path / "killed"
    run_and_kill(config, run, 7)
    assert len(losses(run)) < steps
    train(load_config(config), resume=True)
    assert losses(run) == losses(tmp_path / "ref")
    assert Checkpoint.open(run / "checkpoints/step-000012").fingerprint() == \
        Checkpoint.open(tmp_path / "ref/checkpoints/step-000012").fingerprint()


def test_two_processes_see_the_same_batches_and_held_out_losses(tmp_path, prepared, tiny_model):
    single = config_for(tmp_path, prepared, tiny_model, "single", max_steps=4)
    train(load_config(single))
    config = config_for(tmp_path, prepared, tiny_model, "fsdp", max_steps=4)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "suite.cli", "train", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours = [json.loads(x) for x in (tmp_path / "fsdp/metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (tmp_path / "single/metrics.jsonl").read_text().splitlines()]
    for a, b in zip(ours, ref, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert ("val_loss" in a) == ("val_loss" in b) == (a["step"] % 2 == 0)
        if "val_loss" in a:
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert (tmp_path / "fsdp/data-cache").is_dir()


def wandb_records(path) -> list:
    """The protobuf records of a .wandb file (a LevelDB-style log: 32 KiB blocks of chunked records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, records, pending = open(path, "rb").read(), 7, [], b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):
            break  # a record still being written
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_history(run) -> list[dict]:
    """The history rows of an offline W&B run, once W&B's service (which writes the file after `finish()` returns)
    has written the run's exit record."""
    (path,) = glob.glob(str(run / "wandb/offline-run-*/run-*.wandb"))
    deadline = time.time() + 60
    while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(path)) and time.time() < deadline:
        time.sleep(0.1)
    return [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in wandb_records(path) if r.WhichOneof("record_type") == "history"]


def test_held_out_loss_per_source_reaches_tensorboard_and_wandb(tmp_path, prepared, tiny_model, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "offline")
    config = config_for(tmp_path, prepared, tiny_model, max_steps=4,
                        metrics={"tensorboard": True, "wandb": {"project": "t", "mode": "offline"},
                                 "mixture_every": 2})
    train(load_config(config))
    run = tmp_path / "run"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    held = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in held] == [2, 4]
    assert set(held[0]["val_loss"]) == {"web", "code", "maths", "story"}
    assert all(r["data_wait_s"] >= 0 for r in rows)

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "mfu", "data_wait_s", "val_loss/web", "mixture/web"} <= set(tags)
    assert [e.step for e in events.Scalars("loss")] == [r["step"] for r in rows]
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([r["loss"] for r in rows])
    assert [e.step for e in events.Scalars("val_loss/maths")] == [2, 4]
    assert [e.value for e in events.Scalars("val_loss/maths")] == pytest.approx([r["val_loss"]["maths"] for r in held])

    history = wandb_history(run)
    assert [h["_step"] for h in history] == [r["step"] for r in rows]
    assert [h["loss"] for h in history] == pytest.approx([r["loss"] for r in rows])
    assert [h["val_loss/story"] for h in history if "val_loss/story" in h] == \
        pytest.approx([r["val_loss"]["story"] for r in held])


def test_megatron_data_trains_unchanged(tmp_path, tiny_model):
    """A source tokenized elsewhere with megatron-core's builder, listed by prefix, trains with no manifest."""
    import warnings

    from transformers import AutoTokenizer

    from growth.tinytext import documents

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    builder = IndexedDatasetBuilder(str(tmp_path / "web_text_document.bin"), dtype=np.uint16)
    for doc in documents("prose", 3, 200):
        ids = tok(doc, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        builder.add_document(torch.tensor(ids), [len(ids)])
    builder.finalize(str(tmp_path / "web_text_document.idx"))
    mix = tmp_path / "mix.yaml"
    mix.write_text("name: m\nstages: [{name: s, tokens: 256, sources: [{name: web, weight: 1}]}]\n")
    config = write_train_config(tmp_path, tiny_model, data={
        "mixtures": [str(mix)], "sources": {"web": {"prepared": [str(tmp_path / "web_text_document")]}}})
    train(load_config(config))
    assert len(losses(tmp_path / "run")) == 4


def test_bad_prepared_data_is_one_line_before_the_run_starts(tmp_path, prepared, tiny_model, cli, capsys):
    from growth.fixture import TinySpec, make_tiny

    def one_line_error(config) -> str:
        code = cli("train", "--config", str(config))
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1, lines
        return lines[0]

    tokens = tmp_path / "tokens"
    shutil.copytree(prepared / "tokens", tokens)
    config = config_for(tmp_path, prepared, tiny_model, data={"prepared": str(tokens)})
    run = tmp_path / "run"

    other = make_tiny(tmp_path / "other", TinySpec(vocab=600))
    assert "was prepared with another tokenizer" in one_line_error(
        config_for(tmp_path, prepared, other, "other", data={"prepared": str(tokens)}))

    shard = tokens / "maths/shard-00000.bin"
    content = shard.read_bytes()
    shard.write_bytes(content[:-10])
    assert one_line_error(config) == f"error: {shard} has {len(content) - 10} bytes where the manifest records " \
                                     f"{len(content)}: truncated; prepare it again"
    shard.write_bytes(content)
    (tokens / "code/shard-00000.idx").rename(tokens / "code/x.idx")
    assert one_line_error(config) == f"error: {tokens}/code/shard-00000.idx is missing: indexed datasets come as " \
                                     f"a .bin and an .idx"
    (tokens / "code/x.idx").rename(tokens / "code/shard-00000.idx")

    manifest = json.loads((tokens / MANIFEST).read_text())
    del manifest["sources"]["story"]
    (tokens / MANIFEST).write_text(json.dumps(manifest))
    assert "source story is in the mixture but has no prepared data in" in one_line_error(config)
    (tokens / MANIFEST).unlink()
    assert f"{tokens} has no manifest.json" in one_line_error(config)

    empty = tmp_path / "empty"
    IndexedWriter(empty, np.uint16).commit()
    mix = tmp_path / "mix.yaml"
    mix.write_text("name: m\nstages: [{name: s, tokens: 256, sources: [{name: web, weight: 1}]}]\n")
    bare = write_train_config(tmp_path, tiny_model, "bare", data={
        "mixtures": [str(mix)], "sources": {"web": {"prepared": [str(empty)]}}})
    assert "source web: its prepared data holds no tokens" in one_line_error(bare)
    assert not run.exists() and not (tmp_path / "bare").exists()
