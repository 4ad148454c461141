"""The grown model loads and generates in vLLM (vllm-cpu on CPU machines), matching transformers' greedy tokens."""

from __future__ import annotations

import os

import pytest
import torch
from growtest import write_plan

from growth.grow import grow

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_grown_model_generates_in_vllm(tiny_model, tmp_path):
    vllm = pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    plan = write_plan(tmp_path / "p.yaml", {"op": "untie"}, {"op": "width", "factor": 2, "snr_db": 10},
                      {"op": "depth", "start": 1, "end": 3})
    path = grow(tiny_model, tmp_path / "grown", plan).path
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = "The quick brown fox"
    ids = AutoTokenizer.from_pretrained(str(path))(prompt, return_tensors="pt").input_ids
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    expected = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)[0, ids.shape[1]:].tolist()
    llm = vllm.LLM(model=str(path), dtype="float32", max_model_len=256, enforce_eager=True, seed=0)
    try:
        out = llm.generate([prompt], vllm.SamplingParams(max_tokens=8, temperature=0))
    finally:
        llm.llm_engine.engine_core.shutdown()
    assert len(out[0].outputs[0].token_ids) == 8
    assert list(out[0].outputs[0].token_ids) == expected
