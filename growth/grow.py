"""Apply a growth plan to a checkpoint, streaming tensor by tensor, and record the lineage in growth.json.

    growbench grow Qwen3-4B-Base openseek-mid --plan openseek-mid-v1 --verify
    growbench grow --dry-run --config Qwen3-4B-Base/config.json --plan openseek-mid-v1

Everything that can be checked is checked before a weight is read: the plan file, the source headers, every
operator's shape plan and each step's config against its tensor shapes (the dry run also has transformers build the
grown model on the meta device). Then each output tensor is computed from one source tensor and written in place
(`growth.plan_stream`, `CheckpointWriter`), so memory stays near the largest tensor. The output is published
atomically: an error leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from growth.accounting import check_same_tensors, meta_tensors
from growth.checkpoint import DEFAULT_SHARD_BYTES, Checkpoint, CheckpointWriter, TensorSpec, parse_dtype
from growth.dtype import with_dtype
from growth.foundation.errors import ConfigError, PlanError
from growth.iostats import IOStats, span
from growth.plan import SEED_CONFIGS, GrowthPlan, PlanConfig, build, load_plan
from growth.plan_stream import PlanStream

Progress = Callable[[int, int, str], None]


@dataclass
class GrowResult:
    path: Path
    plan: GrowthPlan
    lineage: dict[str, Any]


def _plan_config(plan: str | Path | PlanConfig) -> PlanConfig:
    return plan if isinstance(plan, PlanConfig) else load_plan(plan)


def plan_growth(config: dict[str, Any], plan: str | Path | PlanConfig, *, seed: int | None = None,
                tensors: dict | None = None, meta_check: bool = True) -> GrowthPlan:
    """Plan a growth; reads no weights. `build` checks every step's config against the planned tensor shapes.

    With `meta_check` (the dry run) transformers also builds the grown model on the meta device and must expect
    exactly the planned tensors; without `tensors` (a dry run from a config.json) the source table comes from there.
    The real grow skips that check: importing transformers would double its resident memory.
    """
    source_table = meta_tensors(config) if tensors is None else tensors
    grown = build(_plan_config(plan), config, source_table, seed=seed)
    if meta_check:
        check_same_tensors(meta_tensors(grown.final.config), grown.final.tensors, "grown config")
    return grown


def plan_checkpoint(src: str | Path, plan: str | Path | PlanConfig, *, seed: int | None = None,
                    meta_check: bool = True) -> tuple[Checkpoint, GrowthPlan]:
    """Open `src` (headers only) and plan its growth; reads no weights."""
    source = Checkpoint.open(src)
    table = {name: (source.info(name).shape, source.info(name).dtype) for name in source.names()}
    return source, plan_growth(source.config, plan, seed=seed, tensors=table, meta_check=meta_check)


def plan_source(src: str | Path | None, config: str | Path | None, plan: str | Path | PlanConfig, *,
                seed: int | None = None) -> GrowthPlan:
    """The dry run's plan: of checkpoint `src` (headers only) or of a config.json (`config`), exactly one of them."""
    if (config is None) == (src is None):
        raise ConfigError("--dry-run needs exactly one of SRC or --config CONFIG_JSON")
    if src is not None:
        return plan_checkpoint(src, plan, seed=seed)[1]
    return plan_growth(read_config_file(config), plan, seed=seed)


def measured_snr(record: dict[str, Any]) -> str | None:
    """One line on the noise a grow added, from its growth.json record: the SNR measured over every noised tensor
    (None when no step added noise)."""
    values = [v for s in record["steps"] for v in s["snr_db_measured"].values() if v is not None]
    if not values:
        return None
    return (f"measured SNR over {len(values)} tensors: mean {sum(values) / len(values):.3f} dB, "
            f"min {min(values):.3f}, max {max(values):.3f}")


def read_config_file(source: str | Path) -> dict[str, Any]:
    """A model's config.json: from a checkpoint folder, a config file, or a shipped seed config by name
    (`qwen3-4b-base`, see SEED_CONFIGS)."""
    path = Path(source) / "config.json" if Path(source).is_dir() else SEED_CONFIGS.resolve(source)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except ValueError as e:
        raise ConfigError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ConfigError(f"{path}: not a model config (no model_type)")
    return config


def output_config(grown: GrowthPlan, dtype: str | None) -> dict[str, Any]:
    """The grown model's config, declaring `dtype` when the output is cast (growth.dtype.with_dtype)."""
    return with_dtype(grown.final.config, dtype) if dtype is not None else dict(grown.final.config)


def lineage(grown: GrowthPlan, source: Checkpoint, stream: PlanStream,
            checks: list[dict[str, Any]] | None) -> dict[str, Any]:
    """growth.json: the resolved plan, seed, source identity, per-step parameter counts and measured SNR."""
    steps = []
    for i, step in enumerate(grown.steps):
        entry = {"op": step.config.op, "params": asdict(step.config.params),
                 "num_parameters_before": step.before.num_parameters,
                 "num_parameters_after": step.after.num_parameters,
                 "snr_db_measured": dict(sorted(stream.measured[i].items()))}
        if checks is not None:
            entry["verify"] = checks[i]
        steps.append(entry)
    record = {"plan": grown.plan.to_dict(), "plan_name": grown.plan.name, "seed": grown.seed,
              "source": {"path": str(source.path.absolute()), "fingerprint": source.fingerprint(),
                         "num_parameters": grown.source.num_parameters},
              "steps": steps, "num_parameters": grown.final.num_parameters}
    if checks is not None and len(checks) > len(steps):  # --verify with --dtype: the written cast, checked apart
        record["verify_output"] = checks[-1]
    return record


Copy = tuple[str, int]  # (source tensor, n): the output is that tensor's bytes n times over


def _stream(writer: CheckpointWriter, source: Checkpoint, specs: list[TensorSpec], copies: dict[str, Copy],
            compute: Callable[[TensorSpec], torch.Tensor], progress: Progress | None) -> None:
    """Compute on this thread while a writer thread puts every tensor in its place; both take the copies.

    Outputs in `copies` need no computing: they are copied file to file (`CheckpointWriter.copy_from`) by the writer
    whenever no computed tensor waits for it, and by this thread whenever the writer is busy and the next computed
    tensor has to wait, so the disk is busy from the first second and neither thread idles while copies are left.
    The others are computed here, in order (`PlanStream` keeps each random draw and reduction where it always ran, so
    the bytes do not change), and passed through a one-slot queue: memory holds the tensor being written, the one
    waiting and the one being computed. Kernel copies, file writes and most tensor arithmetic release the GIL, so
    they all overlap.
    """
    slot: queue.Queue = queue.Queue(maxsize=1)
    failed: list[BaseException] = []
    stop = threading.Event()
    pending = deque(spec for spec in specs if spec.name in copies)
    lock = threading.Lock()
    done = 0
    ended = False  # the computing thread's closing None has been taken off the queue

    def finished(name: str) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress is not None:
                progress(done, len(specs), name)

    def copy_next() -> bool:
        try:
            spec = pending.popleft()
        except IndexError:
            return False
        src_name, times = copies[spec.name]
        writer.copy_from(source, src_name, spec.name, times=times)
        finished(spec.name)
        return True

    def drain() -> None:
        nonlocal ended
        try:
            while not stop.is_set():
                try:
                    item = slot.get_nowait()
                except queue.Empty:
                    if copy_next():
                        continue
                    item = slot.get()
                if item is None:
                    ended = True
                    break
                writer.add(*item)
                finished(item[0])
            while not stop.is_set() and copy_next():
                pass
        except BaseException as e:  # handed to the computing thread, which re-raises it
            failed.append(e)
            stop.set()
            while not ended:  # take what the computing thread still puts, so it is never blocked
                ended = slot.get() is None

    def hand_over(item: tuple[str, torch.Tensor]) -> None:
        while True:
            try:
                return slot.put_nowait(item)
            except queue.Full:
                if failed or not copy_next():
                    return slot.put(item)

    thread = threading.Thread(target=drain, name="growbench-writer", daemon=True)
    thread.start()
    try:
        for spec in specs:
            if failed:
                break
            if spec.name not in copies:
                hand_over((spec.name, compute(spec)))
        while not failed and copy_next():
            pass
    except BaseException:
        stop.set()
        raise
    finally:
        if stop.is_set():  # the writer may have stopped without taking what waits: make room for the closing None
            with contextlib.suppress(queue.Empty):
                slot.get_nowait()
        slot.put(None)
        thread.join()
    if failed:
        raise failed[0]


def grow(src: str | Path, out: str | Path, plan: str | Path | PlanConfig, *, seed: int | None = None,
         dtype: str | None = None, verify: bool = False, force: bool = False,
         max_shard_bytes: int = DEFAULT_SHARD_BYTES, progress: Progress | None = None,
         stats: IOStats | None = None) -> GrowResult:
    """Grow checkpoint `src` into `out` following `plan` (a shipped plan's name, a YAML path or a PlanConfig).

    `stats` (optional) collects where the time went: reads, computes, writes, kernel copies, fsyncs."""
    plan_cfg = _plan_config(plan)
    out_dtype = parse_dtype(dtype) if dtype is not None else None
    source, grown = plan_checkpoint(src, plan_cfg, seed=seed, meta_check=False)
    if Path(out).absolute().resolve() == source.path.absolute().resolve():
        raise PlanError(f"output {out} is the source checkpoint; choose another directory")
    ops = grown.write_order()
    specs = [TensorSpec(op.name, op.shape, out_dtype or op.dtype) for op in ops]
    stream = PlanStream(grown, source, stats)
    last = len(grown.steps) - 1
    copies = {}
    for spec in specs:
        found = stream.source_copy(spec.name)
        if found is not None and source.info(found[0]).dtype == spec.dtype:
            copies[spec.name] = found

    def compute(spec: TensorSpec) -> torch.Tensor:
        tensor = stream.tensor(last, spec.name)
        if tensor.dtype == spec.dtype:
            return tensor
        with span(stats, "compute"):
            return tensor.to(spec.dtype)

    with CheckpointWriter(out, specs, max_shard_bytes=max_shard_bytes, force=force, stats=stats) as writer:
        _stream(writer, source, specs, copies, compute, progress)
        writer.write_config(output_config(grown, dtype))
        writer.copy_aux_from(source)
        checks = None
        if verify:
            from growth.verify import verify_steps

            cast = out_dtype is not None and any(op.dtype != out_dtype for op in ops)
            checks = [c.to_dict() for c in verify_steps(stream, writer.path, dtype if cast else None)]
        record = lineage(grown, source, stream, checks)
        writer.write_json("growth.json", record)
        path = writer.commit()
    return GrowResult(path, grown, record)
