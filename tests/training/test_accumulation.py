"""Gradient accumulation equals one big batch within fp32 rounding: 4 micro-batches in one process, and 4 micro-batches
per rank on 2 processes (FSDP2, gloo) with the gradients reduce-scattered every micro-batch (the default) or only the
last one's; on the untied tiny model, so the embedding and [norm, lm_head] are FSDP2 units of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accumulation_worker import gradients

from growth.fixture import TinySpec, make_tiny

WORKER = Path(__file__).parent / "accumulation_worker.py"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def untied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("models") / "untied", TinySpec(tied=False))


@pytest.fixture(scope="module")
def one_batch(untied: Path) -> tuple[float, dict[str, torch.Tensor]]:
    return gradients(str(untied), 8, "every_micro_batch")


def assert_same(ours: tuple[float, dict[str, torch.Tensor]], ref: tuple[float, dict[str, torch.Tensor]],
                what: str) -> None:
    (loss, grads), (ref_loss, ref_grads) = ours, ref
    assert sorted(grads) == sorted(ref_grads)
    worst = max(((grads[n] - g).norm() / g.norm()).item() for n, g in ref_grads.items())
    print(f"{what}: loss {loss:.7f} vs {ref_loss:.7f}, worst relative gradient difference {worst:.1e}")
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert worst <= 1e-5


def test_one_process_accumulation_equals_one_batch(untied, one_batch):
    assert_same(gradients(str(untied), 2, "every_micro_batch"), one_batch, "1 process, 4 micro-batches")


@pytest.mark.parametrize("sync", ["every_micro_batch", "last_micro_batch"])
def test_two_processes_accumulating_equal_one_batch(tmp_path, untied, one_batch, sync):
    out = tmp_path / "grads.pt"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(WORKER), str(untied), "1", sync, str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(out)
    assert_same((saved["loss"], saved["grads"]), one_batch, f"2 processes x 4 micro-batches, {sync}")
