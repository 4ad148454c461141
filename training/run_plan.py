"""A run's plan at several GPU counts, from the train config and the model's config alone, before any GPU is rented:
the memory planner's per-GPU table (training.memory_plan), distributed Muon's traffic per step
(training.distributed_muon) and the planned GPU step time the data path must keep up with (training.loader). `growbench train --plan-memory` prints it and exits 1 when a count does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from growth.foundation.errors import ConfigError
from growth.foundation.units import gib
from training.distributed_muon import communication_bytes
from training.memory_plan import MemoryPlan, muon_shapes, plan_memory

if TYPE_CHECKING:
    from training.config import TrainConfig


@dataclass(frozen=True)
class RunPlan:
    title: str
    columns: list[str]
    """One per GPU count: '64 GPUs', ..."""
    rows: list[tuple[str, list[str]]]
    """A label and one cell per GPU count: every memory component, the total, whether it fits, the peak's phase."""
    notes: list[str]
    """Distributed Muon's traffic and Newton-Schulz work, the planned GPU step time and, for on-the-fly data that
    cannot keep up, a note; per GPU count."""
    plans: list[MemoryPlan]

    @property
    def fits(self) -> bool:
        return all(p.fits for p in self.plans)


def plan_run(cfg: TrainConfig, worlds: list[int], gpu_memory: int, model_config: Path | None = None) -> RunPlan:
    """The plan of `cfg` on each GPU count in `worlds`, for GPUs of `gpu_memory` bytes; the model's config.json is
    `model_config`, else the one in the config's model folder."""
    from growth.grow import read_config_file

    if any(w < 1 for w in worlds):
        raise ConfigError(f"GPU counts must be positive, got {worlds}")
    if model_config is None and not (cfg.path(cfg.model) / "config.json").is_file():
        raise ConfigError(f"no config.json at {cfg.model}; give the model's config with --model-config CONFIG_JSON "
                          f"(e.g. the one `growbench grow --dry-run ... --write-config FILE` writes)")
    config = read_config_file(model_config or cfg.path(cfg.model))
    plans = [plan_memory(config, cfg, w, "cuda", gpu_memory) for w in worlds]
    rows = [("micro-batches per GPU and step", [str(p.accumulation) for p in plans])]
    rows += [(label, [gib(p.rows()[i][1]) for p in plans]) for i, (label, _) in enumerate(plans[0].rows())]
    rows.append((f"fits in {gib(gpu_memory)}", ["yes" if p.fits else "NO" for p in plans]))
    rows.append(("peak during", [p.peak_phase for p in plans]))
    notes = []
    if cfg.optimizer.muon:
        shapes = muon_shapes(config, cfg.optimizer)
        ns_bytes = cfg.optimizer.newton_schulz_dtype("cuda").itemsize
        for w in worlds:
            c = communication_bytes(shapes, w, ns_bytes)
            notes.append(f"Muon per step on {w} GPUs: owner {c['owner_bytes'] / 1e9:.2f} GB sent per GPU, "
                         f"{c['owner_flops'] / 1e12:.1f} TFLOP Newton-Schulz per GPU; gather "
                         f"{c['gather_bytes'] / 1e9:.1f} GB received, {c['gather_flops'] / 1e12:.0f} TFLOP per GPU")
    notes += data_notes(cfg, config, worlds)
    title = (f"memory per GPU: {config.get('num_hidden_layers')} layers, hidden {config.get('hidden_size')}, "
             f"seq_len {cfg.seq_len} x micro_batch {cfg.micro_batch}, global_batch {cfg.global_batch}, "
             f"{plans[0].dtype}")
    return RunPlan(title=title, columns=[f"{w} GPUs" for w in worlds], rows=rows, notes=notes, plans=plans)


def data_notes(cfg: TrainConfig, model_config: dict, worlds: list[int]) -> list[str]:
    """The planned GPU step time per GPU count, and a note when the on-the-fly data path cannot keep up with it
    (training.loader.on_the_fly_note)."""
    from training.loader import on_the_fly_note, uses_prepared
    from training.mixture import resolve_stages
    from training.throughput import H100_BF16_PEAK, PLANNED_MFU, planned_step_seconds

    peak = cfg.peak_tflops * 1e12 if cfg.peak_tflops else H100_BF16_PEAK
    prepared = uses_prepared(resolve_stages(cfg.data.mixtures, cfg.data.sources, inputs=False), cfg.data)
    notes = []
    for w in worlds:
        step_s = planned_step_seconds(model_config, cfg.seq_len, cfg.tokens_per_step, w, peak)
        notes.append(f"step on {w} GPUs: ~{step_s:.1f} s of GPU time at {PLANNED_MFU:.0%} MFU of "
                     f"{peak / 1e12:.0f} TFLOP/s")
        note = None if prepared else on_the_fly_note(cfg.tokens_per_step, w, step_s)
        if note:
            notes.append(f"note: {note}")
    return notes
