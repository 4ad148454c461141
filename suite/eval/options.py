"""How to evaluate, declared once: the options `growbench eval` and `sweep` generate their flags from
(suite/cli/options.py reads each field's docstring as its --help), that a pipeline's eval section extends
(suite/pipeline/config.py), and that the evaluator takes whole (suite/eval/evaluate.py).

    EvalOptions(suite="tiny-builtin", benchmarks=("tiny_cloze",), limit=20, backend="hf")

`EvalConfig` is what a command line or a pipeline YAML says about which benchmarks run and how; `EvalOptions`
resolves its suite once into a `Suite`, passed down whole from then on, and adds what belongs to one machine and
one invocation (the benchmark mirror, --force). `Distribution` says how a sweep spreads its checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.errors import ConfigError
from suite.eval.benchmarks import DEFAULT_SUITE, Suite, as_suite

EXECUTORS = ("local", "ray")
MAX_RETRIES = 2


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Which benchmarks run, and how they are run and scored."""

    suite: str | Path | Suite = DEFAULT_SUITE
    """Suite name (suite/eval/suites/) or a suite YAML file."""
    benchmarks: tuple[str, ...] = ()
    """Benchmark keys (repeat or comma-separate); default: all of the suite."""
    limit: int | None = None
    """Documents per lm-eval task (for testing; recorded and hashed)."""
    backend: str | None = None
    """Evaluation backend: vllm or hf (default: vllm when importable)."""
    allow_code_execution: bool = False
    """Run model-written code (MBPP, EvalPlus) in the sandbox."""
    dtype: str = "auto"
    """auto (the checkpoint's), float32, bfloat16, float16."""
    seed: int = 1234
    """Seed of lm-eval's sampling and few-shot choice (hashed)."""
    batch_size: int | str = "auto"
    """Engine batch size (auto, or a number); a number skips lm-eval's auto detection, which probes the full
    context length."""
    log_samples: bool = False
    """Also store full per-sample outputs (responses) in the samples table; per-document scores are always
    stored."""
    engine: dict[str, Any] = field(default_factory=dict)
    """Engine settings over the suite's (suite/eval/engine_settings.py; unknown keys are errors): KEY=VALUE on the
    command line (repeat: max_num_seqs=64, kv_cache_dtype=fp8, or any vLLM engine argument), a mapping in YAML."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "benchmarks", tuple(self.benchmarks))
        if isinstance(self.batch_size, str) and self.batch_size != "auto":
            if not self.batch_size.isdigit():
                raise ConfigError(f"batch_size must be auto or a number, got {self.batch_size!r}")
            object.__setattr__(self, "batch_size", int(self.batch_size))
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ConfigError(f"batch_size must be auto or a number of at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1 document per task (leave it out for all), got {self.limit}")


@dataclass(frozen=True, kw_only=True)
class EvalOptions(EvalConfig):
    """One evaluation's options: the config with its suite resolved (once, here: `suite` is a Suite from then on),
    and this machine's data."""

    data_dir: Path | None = None
    """Local benchmark mirror <dataset>/<config>/<split>.jsonl (default $GROWBENCH_DATA_DIR; none: the Hugging
    Face hub)."""
    force: bool = False
    """Re-run benchmarks that already have a finished result."""
    lm_eval_output: Path | None = None
    """Also write lm-eval's own results_*.json and samples_*.jsonl here, one folder per checkpoint (what `lm_eval
    --output_path DIR --log_samples` writes: to share, or to `growbench ingest` into another store); written by the
    process that ran the job, so on a Ray cluster give a shared filesystem path."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "suite", as_suite(self.suite))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.lm_eval_output is not None:
            object.__setattr__(self, "lm_eval_output", Path(self.lm_eval_output))


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """How a sweep spreads its checkpoints: local workers (none: this process) or a Ray cluster."""

    executor: str = "local"
    """local (this machine) or ray."""
    workers: int | None = None
    """Local worker processes, one engine each (on GPUs: tensor_parallel_size GPUs each); default: evaluate in
    this process."""
    devices: str | None = None
    """GPUs for the local workers, e.g. 0,1,2,3 (one worker per tensor_parallel_size x pipeline_parallel_size of
    them)."""
    ray_address: str | None = None
    """Ray cluster to join: auto, host:port (default: start a local one)."""
    retries: int = MAX_RETRIES
    """Times a job whose worker died is retried before it is recorded as failed."""

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}; use one of {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.executor == "ray" and (self.workers is not None or self.devices):
            raise ConfigError("--workers/--devices are for the local executor; Ray places tasks on its own devices")
        if self.executor != "ray" and self.ray_address:
            raise ConfigError("--ray-address needs --executor ray")
