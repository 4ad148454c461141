"""One worker process per device group on a node: `growbench sweep --workers N` / `--devices 0,1,2,3`.

Each worker is a spawned process pinned to its devices through CUDA_VISIBLE_DEVICES (tensor_parallel_size x
pipeline_parallel_size devices per worker, so an 8-GPU node with TP 2 runs 4 engines), set before it touches CUDA.
On a machine without GPUs the workers are N plain processes sharing the cores (each gets cores // N threads). A worker
runs one checkpoint at a time (suite/eval/engine_run.py: one engine load, all the checkpoint's claimed benchmarks) and
sends the rows back; the sweeping process claims the checkpoints and is the only one that writes the store. A worker
that dies mid-job (killed, out of memory) is replaced and its job retried up to `retries` times, then recorded as
failed with the reason.

Memory: each worker holds one engine (weights + KV cache) at a time; the sweeping process holds no model.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from growth.foundation.errors import ConfigError
from suite.eval.engine_run import Job, JobResult, error_line, runner_for
from suite.eval.options import MAX_RETRIES, EvalOptions


def parse_devices(text: str) -> list[str]:
    """'0,1,2,3' -> ['0', '1', '2', '3'] (CUDA device indices, as CUDA_VISIBLE_DEVICES takes them)."""
    items = [d.strip() for d in text.split(",") if d.strip()]
    if not items or not all(d.isdigit() for d in items) or len(set(items)) != len(items):
        raise ConfigError(f"--devices takes distinct device indices separated by commas (e.g. 0,1,2,3), got {text!r}")
    return items


def plan_workers(workers: int | None, devices: str | None, per_engine: int, gpu_count: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each worker (None: a CPU worker, no pinning); [] means: run in this process."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if devices:
        ids = parse_devices(devices)
        if len(ids) % per_engine:
            raise ConfigError(f"--devices lists {len(ids)} devices, which do not split into engines of "
                              f"{per_engine} (tensor_parallel_size x pipeline_parallel_size)")
        groups = [",".join(ids[i:i + per_engine]) for i in range(0, len(ids), per_engine)]
        if workers is not None and workers != len(groups):
            raise ConfigError(f"--workers {workers} does not match --devices {devices} ({len(groups)} engines of "
                              f"{per_engine} devices); give one of the two")
        return list(groups)
    if workers is None or workers == 1:
        return []
    if gpu_count == 0:
        return [None] * workers
    if workers * per_engine > gpu_count:
        raise ConfigError(f"--workers {workers} needs {workers * per_engine} GPUs ({per_engine} per engine), "
                          f"this machine has {gpu_count}")
    return [",".join(str(d) for d in range(w * per_engine, (w + 1) * per_engine)) for w in range(workers)]


def serve(conn: Any, options: EvalOptions, devices: str | None, threads: int) -> None:
    """A worker's life: pin to the devices, then run the jobs sent to it until it gets None."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices  # before anything initialises CUDA in this process
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    runner = runner_for(options)
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(runner.run(job))
        except Exception as e:  # noqa: BLE001 - reported on the job's runs; the worker takes the next one
            conn.send(error_line(e))


@dataclass
class _Worker:
    process: Any
    conn: Any
    devices: str | None
    job: Job | None = None
    attempts: int = 0


class WorkerPool:
    """Worker processes, one job each at a time: the local JobExecutor (suite/eval/sweep.py)."""

    def __init__(self, options: EvalOptions, groups: list[str | None], retries: int = MAX_RETRIES) -> None:
        self._ctx = multiprocessing.get_context("spawn")  # fresh interpreters: CUDA is set per worker
        self.options, self.retries = options, retries
        self.threads = max(1, (os.cpu_count() or 1) // len(groups))
        self.workers = [self._start(g) for g in groups]
        self.slots = len(groups)

    def _start(self, devices: str | None) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=serve, args=(child, self.options, devices, self.threads),
                                    name=f"growbench-worker[{devices or 'cpu'}]", daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent, devices)

    @property
    def busy(self) -> int:
        return sum(w.job is not None for w in self.workers)

    def submit(self, job: Job) -> None:
        worker = next(w for w in self.workers if w.job is None)
        worker.job, worker.attempts = job, 1
        worker.conn.send(job)

    def next_done(self) -> tuple[Job, JobResult | str]:
        while True:
            busy = [w for w in self.workers if w.job is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for w in busy:
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):  # it died mid-job (reset or closed pipe); its sentinel says so
                        continue
                    job, w.job = w.job, None
                    return job, message
            for w in busy:
                if w.process.sentinel in ready and not w.process.is_alive():
                    outcome = self._replace(w)
                    if outcome is not None:
                        return outcome

    def _replace(self, dead: _Worker) -> tuple[Job, str] | None:
        """Start a fresh worker on the dead one's devices; retry its job or give the job up with the reason."""
        job, attempts = dead.job, dead.attempts
        assert job is not None
        fresh = self._start(dead.devices)
        self.workers[self.workers.index(dead)] = fresh
        if attempts <= self.retries:
            fresh.job, fresh.attempts = job, attempts + 1
            fresh.conn.send(job)
            return None
        return job, (f"the worker on {'devices ' + dead.devices if dead.devices else 'CPU'} died (exit code "
                     f"{dead.process.exitcode}) in each of {attempts} attempts: killed, or out of memory")

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in self.workers:
            w.process.join(timeout=60)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
