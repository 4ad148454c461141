"""The sweep on a Ray cluster: `growbench sweep ... --executor ray [--ray-address auto]` (pip install 'growbench[ray]').

The sweeping process is Ray's driver: it plans and claims the jobs and is the only process that writes the store.
Each Ray task evaluates one checkpoint's claimed benchmarks on one engine (suite/eval/engine_run.py) and returns the rows
(scores, samples, errors) to the driver. A task asks for the devices one engine needs: num_gpus =
tensor_parallel_size x pipeline_parallel_size on a cluster with GPUs, `cpus_per_task` CPUs on one without. A task
whose worker dies (killed node, out of memory) is retried by Ray up to `retries` times and then recorded as failed
with Ray's reason; since tasks never write, a retried task cannot leave a duplicate row. Killing the driver leaves its
claims behind: the next sweep takes them over (at once on the same host, after the heartbeat timeout elsewhere) and
skips every finished job.

Every node needs growbench (same version) and reads checkpoints and the data mirror at the same paths (a shared
filesystem). Memory: each task holds one engine; the driver holds no model.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from growth.foundation.errors import BackendError
from suite.eval.engine_run import Job, JobResult, error_line, first_line, runner_for
from suite.eval.engine_settings import EngineSettings
from suite.eval.options import EvalOptions


def evaluate_checkpoint(options: EvalOptions, job: Job) -> JobResult:
    """The Ray task (its workers show as `ray::evaluate_checkpoint`): one checkpoint, rows back to the driver."""
    return runner_for(options).run(job)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (C++ logging bypasses Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_PROBE = ("import sys, ray; ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, "
          "configure_logging=False); ray.shutdown()")
CONNECT_TIMEOUT_S = 90.0


def _probe(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Join the cluster once in a child process with a deadline: ray.init itself retries a refused or foreign
    address for many minutes (its C++ client keeps reconnecting), which is no answer for a user."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():  # a refused or unroutable address answers at once
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as e:
            raise BackendError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); start one with "
                               "`ray start --head` or check --ray-address") from None
    why = f"no answer within {timeout:.0f} s"
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        proc = None
    if proc is not None and proc.returncode == 0:
        return
    if proc is not None:
        errors = [line for line in proc.stderr.splitlines() if "Error" in line and ":" in line]
        why = errors[-1].strip() if errors else f"exit code {proc.returncode}"
    raise BackendError(f"cannot reach the Ray cluster at {address} ({why}); start one with `ray start --head` "
                       "or check --ray-address")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError("--executor ray needs Ray: pip install 'growbench[ray]' (or pip install ray)") from None
    return ray


class RayExecutor:
    """Submits jobs as Ray tasks, keeping about twice the cluster's engine capacity in flight (a JobExecutor,
    suite/eval/sweep.py)."""

    def __init__(self, options: EvalOptions, engine: EngineSettings, *, address: str | None = None,
                 retries: int = 2, cpus_per_task: int = 1) -> None:
        ray = self._ray = _ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if address is not None:
                _probe(address)
            try:
                with _quiet_stderr():  # Ray's C++ client logs a line per second while it cannot connect
                    ray.init(address=address, include_dashboard=False, log_to_driver=False,
                             logging_level=logging.WARNING, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
                where = f"at {address}" if address else "(a local one could not start)"
                raise BackendError(f"cannot reach the Ray cluster {where}: {first_line(e)}; start one with "
                                   "`ray start --head` or check --ray-address") from None
        resources = ray.cluster_resources()
        per_engine = engine.devices_per_engine
        if resources.get("GPU", 0) > 0:
            need: dict[str, Any] = {"num_gpus": per_engine, "num_cpus": 1}
            capacity = int(resources["GPU"] // per_engine)
        else:
            need = {"num_cpus": cpus_per_task}
            capacity = int(resources.get("CPU", 0) // cpus_per_task)
        if capacity < 1:
            raise BackendError(f"the Ray cluster ({resources.get('GPU', 0):g} GPUs, {resources.get('CPU', 0):g} "
                               f"CPUs) cannot hold one engine ({need})")
        self.options, self.slots, self.need = options, 2 * capacity, need
        self._task = ray.remote(evaluate_checkpoint).options(max_retries=retries, retry_exceptions=False, **need)
        self._running: dict[Any, Job] = {}

    @property
    def busy(self) -> int:
        return len(self._running)

    def submit(self, job: Job) -> None:
        self._running[self._task.remote(self.options, job)] = job

    def next_done(self) -> tuple[Job, JobResult | str]:
        ray = self._ray
        (ref,), _ = ray.wait(list(self._running), num_returns=1)
        job = self._running.pop(ref)
        try:
            return job, ray.get(ref)
        except ray.exceptions.RayError as e:  # the task's worker died after its retries, or the task raised
            return job, f"Ray task failed: {error_line(e)}"

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        if self._owns_ray:
            self._ray.shutdown()
