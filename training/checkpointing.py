"""Training checkpoints: the full state for resuming, and an HF export for evaluation, both published atomically.

    RUN/state/step-000100/        model + optimizer state via torch.distributed.checkpoint (sharded under FSDP2,
                                  one file per rank), plus trainer.json: step, tokens, stage, sampler state, RNG,
                                  and a manifest of every file's size.
    RUN/checkpoints/step-000100/  safetensors + config + tokenizer + training.json (the BRIEF's contract), written
                                  tensor by tensor (each all-gathered in turn; never the full state on one rank).

Both are written into a staging folder and renamed into place, so a `step-*` folder exists only once complete.
With `checkpoint.async_save`, DCP's async_save copies each rank's shards to host memory and writes them from a
background thread (on a gloo group of its own, so its collectives never interleave with training's) while training
goes on; the state is published when the write is done, at the latest before the next save or at the end of the run.
A run killed before that leaves only the staging folder, which resume ignores.
Resuming picks the newest state that passes validation (trainer.json parses, every manifest file has its size);
a newer one that fails is skipped with a warning. If loading a validated state still fails, training stops: the
model may be half-loaded, so nothing continues from it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec, parse_dtype
from growth.dtype import with_dtype
from growth.foundation.atomic import StagingDir
from growth.foundation.errors import CheckpointError
from training.loading import model_tensors

log = logging.getLogger(__name__)
TRAINER_FILE = "trainer.json"


def step_name(step: int) -> str:
    return f"step-{step:06d}"


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


@contextlib.contextmanager
def _quiet_single_process():
    """DCP warns on every call that it 'assumes a single process' when there is no process group: that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _shared_staging(out: Path) -> tuple[StagingDir | None, Path]:
    """Rank 0 creates the staging folder; every rank learns its path."""
    staging = StagingDir(out, force=True) if _rank() == 0 else None
    box = [str(staging.path) if staging else None]
    if dist.is_initialized():
        dist.broadcast_object_list(box, src=0)
    return staging, Path(box[0])


class StateSaver:
    """Writes RUN/state/step-N (every rank its shards; rank 0 adds trainer.json and publishes), synchronously or with
    DCP's async_save, one save in flight at a time."""

    def __init__(self, run_dir: Path, keep: int, async_save: bool = False) -> None:
        self.run_dir, self.keep, self.async_save = run_dir, keep, async_save
        self.group = dist.new_group(backend="gloo") if async_save and dist.is_initialized() else None
        self.pending: tuple[Any, StagingDir | None, Path, dict[str, Any]] | None = None

    def save(self, step: int, model: torch.nn.Module, optimizers: list[torch.optim.Optimizer],
             trainer_state: dict[str, Any]) -> Path:
        """Start (async) or write the state of `step`; `trainer_state` and the RNG are captured now."""
        self.wait()
        out = self.run_dir / "state" / step_name(step)
        staging, path = _shared_staging(out)
        model_sd, optim_sd = get_state_dict(model, optimizers)
        state = dict(trainer_state, torch_rng=torch.get_rng_state().tolist())
        with _quiet_single_process():
            if self.async_save:
                future = dcp.async_save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path),
                                        process_group=self.group)
                self.pending = future, staging, path, state
                return out
            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
        self._publish(staging, path, state)
        return out

    def wait(self) -> None:
        """Finish and publish the save in flight, if any."""
        if self.pending is None:
            return
        future, staging, path, state = self.pending
        self.pending = None
        future.result()
        self._publish(staging, path, state)

    def _publish(self, staging: StagingDir | None, path: Path, state: dict[str, Any]) -> None:
        _barrier()
        if staging is not None:
            with staging:
                manifest = {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*"))
                            if p.is_file()}
                (path / TRAINER_FILE).write_text(json.dumps(dict(state, manifest=manifest), indent=1))
                staging.publish()
            for old in sorted((self.run_dir / "state").glob("step-*"))[:-self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        _barrier()


def validate_state(path: Path) -> dict[str, Any]:
    """trainer.json of a complete state, or CheckpointError saying what is wrong."""
    try:
        state = json.loads((path / TRAINER_FILE).read_text())
        manifest = state["manifest"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: missing or unreadable {TRAINER_FILE} ({type(e).__name__}: {e})") from e
    for rel, size in manifest.items():
        f = path / rel
        if not f.is_file() or f.stat().st_size != size:
            raise CheckpointError(f"{path}: {rel} is missing or truncated")
    return state


def find_resumable(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest valid state under RUN/state, skipping (with a warning) newer ones that fail validation."""
    candidates = sorted((run_dir / "state").glob("step-*"), reverse=True)
    for path in candidates:
        try:
            return path, validate_state(path)
        except CheckpointError as e:
            log.warning("skipping corrupt training state: %s", e)
    if candidates:
        raise CheckpointError(f"{run_dir}: no training state under state/ is complete; cannot resume "
                              f"(remove the run folder to start over)")
    return None


def load_state(path: Path, model: torch.nn.Module, optimizers: list[torch.optim.Optimizer],
               trainer_state: dict[str, Any]) -> None:
    """Load model and optimizer state in place; any failure stops training rather than continue half-loaded."""
    model_sd, optim_sd = get_state_dict(model, optimizers)
    state = {"model": model_sd, "optim": optim_sd}
    try:
        with _quiet_single_process():
            dcp.load(state, checkpoint_id=str(path))
        set_state_dict(model, optimizers, model_state_dict=state["model"], optim_state_dict=state["optim"])
    except Exception as e:  # the model may be partly overwritten: refuse to go on, say where
        raise CheckpointError(f"{path}: cannot load training state ({type(e).__name__}: {e}); "
                              f"delete this folder to resume from an earlier one") from e
    torch.set_rng_state(torch.tensor(trainer_state["torch_rng"], dtype=torch.uint8))


def export_hf(run_dir: Path, step: int, model: torch.nn.Module, parent: Checkpoint, training: dict[str, Any],
              dtype: str = "auto") -> Path | None:
    """Write RUN/checkpoints/step-N as an HF checkpoint with training.json, gathering one tensor at a time.

    Every rank takes part in each tensor's all-gather (`full_tensor()`); rank 0 streams it into a CheckpointWriter
    and drops it. So no rank ever holds more than one whole tensor beside its shards, whatever the model size.
    """
    from torch.distributed.tensor import DTensor

    out = run_dir / "checkpoints" / step_name(step)
    target = parse_dtype(dtype) if dtype != "auto" else parent.info(parent.names()[0]).dtype
    config = with_dtype(parent.config, target)  # the parent's key(s), so a reader of either sees `target`
    tensors = model_tensors(model)
    if config.get("tie_word_embeddings"):
        tensors.pop("lm_head.weight", None)
    specs = [TensorSpec(name, tuple(t.shape), target) for name, t in tensors.items()]
    with CheckpointWriter(out, specs, force=True) if _rank() == 0 else contextlib.nullcontext() as writer:
        for name, t in tensors.items():
            full = t.full_tensor() if isinstance(t, DTensor) else t.detach()
            if writer is not None:
                writer.add(name, full.to(device="cpu", dtype=target))
            del full
        if writer is not None:
            writer.write_config(config)
            writer.copy_aux_from(parent, exclude=["training.json"])
            writer.write_json("training.json", training)
            writer.commit()
    _barrier()
    return out if _rank() == 0 else None
