"""Streaming checkpoint I/O: bit-exact round trips, atomic publishing, and one-line errors for bad inputs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec, save_state_dict
from growth.foundation.errors import CheckpointError, GrowbenchError


def copy_checkpoint(src: Path, out: Path, max_shard_bytes: int = 2**40, force: bool = False) -> Path:
    ckpt = Checkpoint.open(src)
    specs = [TensorSpec(n, ckpt.info(n).shape, ckpt.info(n).dtype) for n in ckpt.names()]
    with CheckpointWriter(out, specs, max_shard_bytes=max_shard_bytes, force=force) as w:
        for s in specs:
            w.add(s.name, ckpt.read(s.name))
        w.write_config(ckpt.config)
        w.copy_aux_from(ckpt)
        return w.commit()


def assert_same_tensors(a: Path, b: Path) -> None:
    ca, cb = Checkpoint.open(a), Checkpoint.open(b)
    assert ca.names() == cb.names()
    for name in ca.names():
        ta, tb = ca.read(name), cb.read(name)
        assert ta.dtype == tb.dtype and ta.shape == tb.shape
        assert torch.equal(ta.view(torch.uint8), tb.view(torch.uint8)), name


def test_single_file_round_trip_is_bit_exact(tiny_model: Path, tmp_path: Path) -> None:
    out = copy_checkpoint(tiny_model, tmp_path / "copy")
    assert (out / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert (out / "tokenizer.json").read_bytes() == (tiny_model / "tokenizer.json").read_bytes()


def test_sharded_round_trip_and_index(tiny_sharded: Path, tmp_path: Path) -> None:
    out = copy_checkpoint(tiny_sharded, tmp_path / "resharded", max_shard_bytes=700_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    ckpt = Checkpoint.open(out)
    assert index["metadata"]["total_size"] == ckpt.total_bytes
    assert set(index["weight_map"]) == set(ckpt.names())
    for name, fname in index["weight_map"].items():
        assert ckpt.info(name).file.name == fname
    assert all((out / f).stat().st_size <= 700_000 + 64_000 for f in set(index["weight_map"].values()))
    assert_same_tensors(tiny_sharded, out)


def test_sharded_output_reads_back_with_safetensors_library(tiny_sharded: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    out = copy_checkpoint(tiny_sharded, tmp_path / "c", max_shard_bytes=500_000)
    ckpt = Checkpoint.open(out)
    for f in {ckpt.info(n).file for n in ckpt.names()}:
        for name, tensor in load_file(f).items():
            assert torch.equal(tensor, ckpt.read(name))


def test_bf16_and_dtype_preserved(tmp_path: Path) -> None:
    state = {"a": torch.randn(3, 5).to(torch.bfloat16), "b": torch.arange(7, dtype=torch.int64)}
    out = save_state_dict(tmp_path / "m", state, {"model_type": "toy"})
    ckpt = Checkpoint.open(out)
    assert torch.equal(ckpt.read("a"), state["a"]) and torch.equal(ckpt.read("b"), state["b"])


def test_existing_output_needs_force_and_is_replaced_whole(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(GrowbenchError, match="already exists"):
        copy_checkpoint(tiny_model, out)
    assert (out / "keep.txt").read_text() == "old"
    copy_checkpoint(tiny_model, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_writer_error_leaves_nothing_behind(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="expected"):
        with CheckpointWriter(tmp_path / "out", [TensorSpec("x", (2,), torch.float32)]) as w:
            w.add("x", torch.zeros(3))
    assert list(tmp_path.iterdir()) == []


_SLOW_WRITER = """
import sys, time, torch
from growth.checkpoint import CheckpointWriter, TensorSpec
specs = [TensorSpec(f"t{i}", (256, 256), torch.float32) for i in range(50)]
with CheckpointWriter(sys.argv[1], specs, max_shard_bytes=1_000_000, force=True) as w:
    for i, s in enumerate(specs):
        w.add(s.name, torch.full(s.shape, float(i)))
        if i == 10:
            print("writing", flush=True)
            time.sleep(60)
    w.write_config({"model_type": "toy"})
    w.commit()
"""


@pytest.mark.parametrize("existing", [False, True])
def test_killed_writer_leaves_output_absent_or_as_it_was(tmp_path: Path, existing: bool) -> None:
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "config.json").write_text('{"model_type": "before"}')
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if existing:
        assert [p.name for p in out.iterdir()] == ["config.json"]
        assert json.loads((out / "config.json").read_text())["model_type"] == "before"
    else:
        assert not out.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert leftovers, "the killed writer's staging folder should remain until the next writer"
    save_state_dict(out, {"x": torch.zeros(1)}, {"model_type": "toy"}, force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]


# --- bad inputs: CLI gives one line and exit code 2 -------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "from suite.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def corrupt(tiny_model: Path, tmp_path: Path, how: str) -> Path:
    bad = tmp_path / how
    copy_checkpoint(tiny_model, bad)
    weights = bad / "model.safetensors"
    data = weights.read_bytes()
    if how == "header":
        weights.write_bytes(data[:8] + b"{not json" + data[17:])
    elif how == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "no-config":
        (bad / "config.json").unlink()
    elif how == "bad-config":
        (bad / "config.json").write_text("{oops")
    elif how == "dtype":
        weights.write_bytes(data.replace(b'"dtype":"F32"', b'"dtype":"C64"', 1))
    return bad


@pytest.mark.parametrize("how, message", [
    ("header", "corrupt safetensors header"),
    ("truncated", "truncated"),
    ("no-config", "missing config.json"),
    ("bad-config", "invalid JSON"),
    ("dtype", "unsupported dtype C64"),
])
def test_bad_checkpoints_are_one_line_errors(tiny_model: Path, tmp_path: Path, how: str, message: str) -> None:
    bad = corrupt(tiny_model, tmp_path, how)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.open(bad)


def test_missing_shard_and_missing_dir(tiny_sharded: Path, tmp_path: Path) -> None:
    bad = copy_checkpoint(tiny_sharded, tmp_path / "sharded", max_shard_bytes=500_000)
    victim = sorted(bad.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=f"shard {victim.name} named in"):
        Checkpoint.open(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.open(tmp_path / "nowhere")


def test_cli_reports_user_errors_in_one_line_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    proc = run_cli("fixture", "tiny", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "already exists" in proc.stderr
    proc = run_cli("fixture", "tiny", str(tmp_path / "x"), "--dtype", "int3")
    assert proc.returncode == 2 and "unsupported dtype" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_cli_version_and_env() -> None:
    assert run_cli("--version").stdout.startswith("growbench ")
    proc = run_cli("env")
    assert proc.returncode == 0
    for word in ("torch", "transformers", "lm_eval", "duckdb", "data mirror", "database"):
        assert word in proc.stdout


# --- the positional writer: parts in any order from any thread, kernel copies, repeats ------------------------

def _specs() -> list[TensorSpec]:
    return [TensorSpec(f"t{i}", (64, 33 + i), torch.float32) for i in range(6)] + \
        [TensorSpec("h", (40, 8), torch.bfloat16), TensorSpec("empty", (0, 4), torch.float32)]


def _values(spec: TensorSpec) -> torch.Tensor:
    return torch.randn(spec.shape, generator=torch.Generator().manual_seed(len(spec.name) + spec.shape[-1])
                       ).to(spec.dtype)


def test_parts_written_out_of_order_from_threads_give_the_sequential_bytes(tmp_path: Path) -> None:
    import random
    from concurrent.futures import ThreadPoolExecutor

    specs = _specs()
    ref = save_state_dict(tmp_path / "ref", {s.name: _values(s) for s in specs}, {"model_type": "toy"},
                          max_shard_bytes=20_000)
    parts = []
    for s in specs:
        flat = _values(s).reshape(-1)
        step = 100
        parts += [(s.name, a * s.dtype.itemsize, flat[a:a + step]) for a in range(0, flat.numel(), step)] or \
            [(s.name, 0, flat)]
    random.Random(0).shuffle(parts)
    with CheckpointWriter(tmp_path / "out", specs, max_shard_bytes=20_000) as w:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: w.write_part(*p), parts))
        w.write_config({"model_type": "toy"})
        out = w.commit()
    files = sorted(p.name for p in ref.iterdir())
    assert files == sorted(p.name for p in out.iterdir()) and len(files) > 3
    for name in files:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_writer_rejects_overlaps_strangers_and_gaps(tmp_path: Path) -> None:
    spec = TensorSpec("x", (4, 4), torch.float32)
    with pytest.raises(CheckpointError, match="outside 'x'"):
        with CheckpointWriter(tmp_path / "a", [spec]) as w:
            w.write_part("x", 60, torch.zeros(2))
    with pytest.raises(CheckpointError, match="written twice"):
        with CheckpointWriter(tmp_path / "b", [spec]) as w:
            w.add("x", torch.zeros(4, 4))
            w.write_part("x", 0, torch.zeros(1))
    with pytest.raises(CheckpointError, match="not in the output plan"):
        with CheckpointWriter(tmp_path / "c", [spec]) as w:
            w.add("y", torch.zeros(4, 4))
    with pytest.raises(CheckpointError, match="incomplete: 1 tensors missing, first x"):
        with CheckpointWriter(tmp_path / "d", [spec, TensorSpec("z", (1,), torch.float32)]) as w:
            w.add("z", torch.zeros(1))
            w.write_part("x", 0, torch.zeros(15))
            w.write_config({"model_type": "toy"})
            w.commit()
    assert list(tmp_path.iterdir()) == []


def test_copy_from_stacks_repeats_and_checks_shapes(tmp_path: Path) -> None:
    x = torch.randn(3, 5)
    src = Checkpoint.open(save_state_dict(tmp_path / "src", {"x": x}, {"model_type": "toy"}))
    specs = [TensorSpec("x", (3, 5), torch.float32), TensorSpec("x3", (9, 5), torch.float32)]
    with CheckpointWriter(tmp_path / "out", specs) as w:
        w.copy_from(src, "x", "x3", times=3)
        w.copy_from(src, "x")
        w.write_config({"model_type": "toy"})
        out = Checkpoint.open(w.commit())
    assert torch.equal(out.read("x3"), torch.cat([x, x, x])) and torch.equal(out.read("x"), x)
    with pytest.raises(CheckpointError, match=r"expected x3 \[9, 5\] torch.float32, got 2 x x"):
        with CheckpointWriter(tmp_path / "bad", specs) as w:
            w.copy_from(src, "x", "x3", times=2)


def test_copies_fall_back_to_reads_where_the_kernel_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    x = torch.randn(300, 7)
    src = Checkpoint.open(save_state_dict(tmp_path / "src", {"x": x}, {"model_type": "toy"}))
    monkeypatch.setattr(os, "copy_file_range", refuse)
    with CheckpointWriter(tmp_path / "out", [TensorSpec("x", (600, 7), torch.float32)]) as w:
        w.copy_from(src, "x", times=2)
        w.write_config({"model_type": "toy"})
        out = Checkpoint.open(w.commit())
    assert torch.equal(out.read("x"), torch.cat([x, x]))


def test_read_into_reads_byte_ranges_and_rejects_outside(tmp_path: Path) -> None:
    x = torch.arange(100, dtype=torch.float32)
    src = Checkpoint.open(save_state_dict(tmp_path / "src", {"x": x}, {"model_type": "toy"}))
    buf = torch.empty(40, dtype=torch.uint8)
    assert torch.equal(src.read_into("x", buf, 80).view(torch.float32), x[20:30])
    with pytest.raises(CheckpointError, match="outside 'x'"):
        src.read_into("x", buf, 380)
