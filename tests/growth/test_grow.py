"""grow end to end: streamed output, growth.json lineage, determinism, dtype, errors that leave nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from growtest import grow_in_memory, write_plan

from growth.checkpoint import Checkpoint, CheckpointWriter
from growth.foundation.errors import CheckpointError, GrowbenchError, PlanError
from growth.grow import grow
from growth.plan_stream import PlanStream

STEPS = ({"op": "untie"}, {"op": "width", "factor": 2, "snr_db": 10}, {"op": "depth", "start": 1, "end": 3})


def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.tmp-") or p.name == name]


def test_grow_writes_checkpoint_and_lineage(tiny_sharded, tmp_path):
    plan = write_plan(tmp_path / "p.yaml", *STEPS)
    calls = []
    result = grow(tiny_sharded, tmp_path / "out", plan, seed=7, max_shard_bytes=1_000_000,
                  progress=lambda done, total, name: calls.append((done, total)))
    out = Checkpoint.open(result.path)
    assert sorted(out.names()) == sorted(op.name for op in result.plan.output_ops())
    order = out.names()  # a duplicated layer's tensors are written next to their originals (computed once)
    assert order.index("model.layers.3.mlp.down_proj.weight") == order.index("model.layers.1.mlp.down_proj.weight") + 1
    assert len(calls) == len(out.names()) and calls[-1] == (len(out.names()), len(out.names()))
    assert (result.path / "model.safetensors.index.json").exists()
    assert all(torch.isfinite(out.read(n)).all() for n in out.names())
    assert (result.path / "tokenizer.json").exists()
    record = json.loads((result.path / "growth.json").read_text())
    assert record == result.lineage
    src = Checkpoint.open(tiny_sharded)
    assert record["plan_name"] == "p" and record["seed"] == 7 and record["plan"]["steps"][1]["factor"] == 2
    assert record["source"] == {"path": str(tiny_sharded.absolute()), "fingerprint": src.fingerprint(),
                                "num_parameters": src.num_parameters()}
    assert [s["op"] for s in record["steps"]] == ["untie", "width", "depth"]
    counts = [src.num_parameters()] + [s["num_parameters_after"] for s in record["steps"]]
    assert [s["num_parameters_before"] for s in record["steps"]] == counts[:-1]
    assert record["num_parameters"] == counts[-1] == out.num_parameters()
    snr = record["steps"][1]["snr_db_measured"]
    assert sorted(snr) == [f"model.layers.{i}.mlp.down_proj.weight" for i in range(4)]
    assert all(abs(v - 10) < 0.5 for v in snr.values())
    assert record["steps"][1]["params"] == {"factor": 2, "intermediate_size": None, "snr_db": 10,
                                            "noise": "hypercloning"}
    assert out.config["num_hidden_layers"] == 6 and out.config["intermediate_size"] == 512
    assert "growth.json" not in [p.name for p in src.aux_files()]


def test_grow_is_seeded(tiny_model, tmp_path):
    plan = write_plan(tmp_path / "p.yaml", {"op": "width", "intermediate_size": 300, "snr_db": 10})
    a = grow(tiny_model, tmp_path / "a", plan, seed=1).path
    b = grow(tiny_model, tmp_path / "b", plan, seed=1).path
    c = grow(tiny_model, tmp_path / "c", plan, seed=2).path
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_dtype_override(tiny_model, tmp_path):
    out = grow(tiny_model, tmp_path / "bf16", write_plan(tmp_path / "p.yaml", {"op": "untie"}), dtype="bf16").path
    ckpt = Checkpoint.open(out)
    assert {ckpt.info(n).dtype for n in ckpt.names()} == {torch.bfloat16}
    assert ckpt.config["dtype"] == "bfloat16"


def test_errors_leave_nothing_behind(tiny_model, tmp_path):
    plan = write_plan(tmp_path / "p.yaml", *STEPS)
    with pytest.raises(CheckpointError, match="does not exist"):
        grow(tmp_path / "missing", tmp_path / "out", plan)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_model, corrupt)
    with open(corrupt / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        grow(corrupt, tmp_path / "out", plan)
    alien = tmp_path / "alien"
    shutil.copytree(tiny_model, alien)
    config = json.loads((alien / "config.json").read_text())
    (alien / "config.json").write_text(json.dumps(config | {"model_type": "gpt2"}))
    with pytest.raises(PlanError, match="unknown architecture 'gpt2'"):
        grow(alien, tmp_path / "out", plan)
    with pytest.raises(PlanError, match="is the source"):
        grow(tiny_model, tiny_model, plan, force=True)
    assert _leftovers(tmp_path, "out") == []


def test_failure_midway_leaves_nothing_and_existing_output_untouched(tiny_model, tmp_path, monkeypatch):
    plan = write_plan(tmp_path / "p.yaml", *STEPS)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("old")
    with pytest.raises(GrowbenchError, match="already exists"):
        grow(tiny_model, tmp_path / "out", plan)
    real = PlanStream.tensor
    calls = []

    def failing(self, step, name):  # about 20 calls in all: only the FFN down projections are computed
        calls.append(name)
        if len(calls) > 8:
            raise RuntimeError("disk on fire")
        return real(self, step, name)

    monkeypatch.setattr(PlanStream, "tensor", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        grow(tiny_model, tmp_path / "out", plan, force=True)
    assert _leftovers(tmp_path, "out") == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    monkeypatch.setattr(PlanStream, "tensor", real)
    real_add = CheckpointWriter.add

    def failing_add(self, name, tensor):  # the writer thread's error reaches the caller
        if name.startswith("model.layers.2."):
            raise OSError("no space left on device")
        real_add(self, name, tensor)

    monkeypatch.setattr(CheckpointWriter, "add", failing_add)
    with pytest.raises(OSError, match="no space left"):
        grow(tiny_model, tmp_path / "out", plan, force=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    assert _leftovers(tmp_path, "out") == ["out"]


@pytest.mark.parametrize("args, match", [
    (["grow", "{missing}", "{out}", "--plan", "openseek-mid-v1"], "does not exist"),
    (["grow", "{src}", "{out}", "--plan", "no-such-plan"], "unknown growth plan"),
    (["grow", "--dry-run", "--plan", "openseek-mid-v1"], "exactly one of SRC or --config"),
    (["grow", "{src}", "{out}", "--plan", "{bad_plan}"], "integer >= 2"),
    (["grow", "{src}", "{out}", "--plan", "{depth_plan}"], "outside the model's layers"),
    (["grow", "{src}", "{out}", "--plan", "openseek-mid-v1", "--write-config", "{out}.json"], "only for --dry-run"),
])
def test_cli_errors_are_one_line_exit_2(tiny_model, tmp_path, args, match, capsys, cli):
    paths = {"missing": tmp_path / "missing", "out": tmp_path / "out", "src": tiny_model,
             "bad_plan": write_plan(tmp_path / "bad.yaml", {"op": "width", "factor": 1.5}),
             "depth_plan": write_plan(tmp_path / "d.yaml", {"op": "depth", "start": 2, "end": 9})}
    assert cli(*(a.format(**paths) for a in args)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], lines
    assert _leftovers(tmp_path, "out") == []


def test_cli_process_reports_a_missing_source(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "suite.cli", "grow", str(tmp_path / "nope"), str(tmp_path / "out"),
                           "--plan", "openseek-mid-v1"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: checkpoint directory {tmp_path / 'nope'} does not exist"]
    assert _leftovers(tmp_path, "out") == []


def test_copies_and_repeats_of_source_tensors_go_file_to_file(tiny_model, tmp_path):
    from growth.iostats import IOStats

    _, _, stream = grow_in_memory(tiny_model, *STEPS)
    assert stream.source_copy("model.layers.4.mlp.gate_proj.weight") == ("model.layers.2.mlp.gate_proj.weight", 2)
    assert stream.source_copy("model.layers.4.self_attn.q_proj.weight") == ("model.layers.2.self_attn.q_proj.weight",
                                                                               1)
    assert stream.source_copy("lm_head.weight") == ("model.embed_tokens.weight", 1)
    assert stream.source_copy("model.layers.0.mlp.down_proj.weight") is None  # noise: computed
    _, _, uneven = grow_in_memory(tiny_model, {"op": "width", "intermediate_size": 300})
    assert uneven.source_copy("model.layers.0.mlp.up_proj.weight") is None  # a seeded subset of rows: computed
    stats = IOStats()
    out = grow(tiny_model, tmp_path / "out", write_plan(tmp_path / "p.yaml", *STEPS), stats=stats).path
    summary = stats.summary()
    assert all(summary["busy"][kind] > 0 for kind in ("read", "compute", "write", "copy", "fsync"))
    ref = Checkpoint.open(out)
    for name in ("model.layers.4.mlp.gate_proj.weight", "lm_head.weight"):
        source, times = stream.source_copy(name)
        assert torch.equal(ref.read(name), torch.cat([Checkpoint.open(tiny_model).read(source)] * times))


def test_a_compute_error_while_a_tensor_waits_for_the_writer_does_not_hang(tiny_model, tmp_path, monkeypatch):
    import threading
    import time

    real_add, real_tensor = CheckpointWriter.add, PlanStream.tensor
    computed = []

    def slow_add(self, name, tensor):  # the writer is still busy when the next compute fails
        time.sleep(0.3)
        real_add(self, name, tensor)

    def failing(self, step, name):
        if step == len(self.plan.steps) - 1:
            computed.append(name)
            if len(computed) == 3:
                raise RuntimeError("compute failed")
        return real_tensor(self, step, name)

    monkeypatch.setattr(CheckpointWriter, "add", slow_add)
    monkeypatch.setattr(PlanStream, "tensor", failing)
    errors = []

    def run():
        try:
            grow(tiny_model, tmp_path / "out", write_plan(tmp_path / "p.yaml", *STEPS))
        except RuntimeError as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "grow hung after a compute error"
    assert [str(e) for e in errors] == ["compute failed"]
    assert _leftovers(tmp_path, "out") == []
