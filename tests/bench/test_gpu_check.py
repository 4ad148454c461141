"""bench.gpu_check runs end to end (its --smoke size, on CPU) with only torch, transformers and safetensors
besides the project: lm-eval, vLLM, DuckDB, pandas, typer and rich are made unimportable for the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ABSENT = ("lm_eval", "vllm", "duckdb", "pandas", "typer", "rich")


def test_gpu_check_smoke_writes_its_report(tmp_path):
    out = tmp_path / "device-out"
    code = (f"import sys\nsys.modules.update(dict.fromkeys({ABSENT!r}))\n"
            f"from bench.gpu_check import main\nmain(['--smoke', '--out', {str(out)!r}])\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["smoke"] and report["muon"]["within_bf16_rounding"] and report["muon"]["ratio"] > 0
    step = report["fsdp_step"]
    assert step["seq_len"] == 256 and step["micro_batches"] == 4 and step["tokens_per_s"] > 0 and 0 < step["mfu"] < 1
    assert 0.5 < step["measured_over_planned"] < 1.5
    assert report["loss"]["chunked"]["loss_rel_diff"] < 1e-6 and report["loss"]["chunked"]["grad_rel_diff"] < 1e-5
    assert "runs Triton kernels on CUDA only" in report["loss"]["liger_absent"]
    assert "(a) Muon bf16 vs torch.optim.Muon" in proc.stdout and "(b) FSDP2 steps" in proc.stdout
    assert "measured" in proc.stdout and "vs planned" in proc.stdout and "(c) chunked loss" in proc.stdout
