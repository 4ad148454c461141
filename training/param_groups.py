"""Split a model's parameters between Muon and AdamW by name patterns and shape, then build both optimizers.

Rules are tried in order and the first match wins (torchtitan's convention). A rule whose patterns match no
parameter is an error, and so is a parameter that no rule matches: a typo in a pattern never silently sends a matrix
to the wrong optimizer. The defaults send embeddings and the lm_head to AdamW, norms and biases to AdamW without
weight decay, and every other 2-D matrix (attention and MLP projections) to Muon.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import torch

from growth.foundation.errors import ConfigError
from training.muon import DISTRIBUTIONS, Muon
from training.newton_schulz import default_ns_dtype

OPTIMIZERS = ("muon", "adamw")


@dataclass
class Rule:
    patterns: list[str]
    """fnmatch globs over parameter names (e.g. "*embed_tokens*"); the rule applies if any matches."""
    optimizer: str
    """muon or adamw."""
    ndim: int | None = None
    """Only parameters with this many dimensions match (2 selects matrices)."""
    weight_decay: float | None = None
    """Override the optimizer's weight decay for these parameters."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"param rule {self.patterns}: optimizer must be one of {OPTIMIZERS}, "
                              f"got {self.optimizer!r}")

    def matches(self, name: str, param: torch.Tensor) -> bool:
        if self.ndim is not None and param.ndim != self.ndim:
            return False
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


def default_rules() -> list[Rule]:
    return [
        Rule(["*embed_tokens*", "*lm_head*"], "adamw"),
        Rule(["*norm*", "*.bias"], "adamw", weight_decay=0.0),
        Rule(["*"], "muon", ndim=2),
    ]


@dataclass
class OptimizerConfig:
    lr: float = 1e-4
    """Peak learning rate, shared by both optimizers (Moonlight scaling makes Muon's comparable to AdamW's)."""
    weight_decay: float = 0.1
    """Decoupled weight decay for both optimizers."""
    muon: bool = True
    """false trains every parameter with AdamW (the baseline the card compares against)."""
    momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5
    ns_dtype: str = "auto"
    """Newton-Schulz precision: auto (bf16 on GPU, fp32 on CPU), float32 or bfloat16."""
    ns_distribution: str = "owner"
    """Under FSDP2: owner (each matrix orthogonalised once, on one rank balanced by FLOPs, rows sent back) or gather
    (every rank all-gathers and orthogonalises every matrix; the baseline). Same updates either way."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    rules: list[Rule] = field(default_factory=default_rules)
    """Which parameters go to which optimizer: first match wins."""

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optimizer.lr must be positive, got {self.lr}")
        if self.ns_dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"optimizer.ns_dtype must be auto, float32 or bfloat16, got {self.ns_dtype!r}")
        if self.ns_distribution not in DISTRIBUTIONS:
            raise ConfigError(f"optimizer.ns_distribution must be one of {DISTRIBUTIONS}, got {self.ns_distribution!r}")
        if len(self.betas) != 2:
            raise ConfigError("optimizer.betas must be two numbers")

    def newton_schulz_dtype(self, device: torch.device | str) -> torch.dtype:
        """The dtype Muon runs Newton-Schulz in on `device` (auto: bf16 on CUDA, fp32 on CPU)."""
        return default_ns_dtype(device) if self.ns_dtype == "auto" else getattr(torch, self.ns_dtype)


def partition(named: list[tuple[str, torch.Tensor]], rules: list[Rule]) -> list[tuple[Rule, list[str]]]:
    """Assign each parameter to the first matching rule; returns (rule, names) per rule, in rule order."""
    assigned: list[tuple[Rule, list[str]]] = [(r, []) for r in rules]
    for name, param in named:
        for i, rule in enumerate(rules):
            if rule.matches(name, param):
                assigned[i][1].append(name)
                break
        else:
            raise ConfigError(f"parameter {name} (shape {list(param.shape)}) matches no optimizer rule; "
                              f"add a rule to optimizer.rules")
    for rule, names in assigned:
        if not names:
            raise ConfigError(f"optimizer rule {rule.patterns} (ndim={rule.ndim}) matches no parameter; "
                              f"fix or remove it")
    return assigned


def build_optimizers(model: torch.nn.Module, cfg: OptimizerConfig) -> list[torch.optim.Optimizer]:
    """[Muon, AdamW] (or [AdamW] when cfg.muon is false); each group records its base lr for the schedule."""
    params = dict(model.named_parameters())
    muon_groups, adamw_groups = [], []
    for rule, names in partition(list(params.items()), cfg.rules):
        wd = cfg.weight_decay if rule.weight_decay is None else rule.weight_decay
        group = {"params": [params[n] for n in names], "weight_decay": wd, "lr": cfg.lr, "base_lr": cfg.lr}
        (muon_groups if rule.optimizer == "muon" and cfg.muon else adamw_groups).append(group)
    optimizers: list[torch.optim.Optimizer] = []
    if muon_groups:
        optimizers.append(Muon(muon_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               ns_steps=cfg.ns_steps, ns_dtype=None if cfg.ns_dtype == "auto" else cfg.ns_dtype,
                               distribution=cfg.ns_distribution))
    if adamw_groups:
        optimizers.append(torch.optim.AdamW(adamw_groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps))
    return optimizers


def set_lr(optimizers: list[torch.optim.Optimizer], factor: float) -> None:
    """Scale every group's base lr by the schedule's factor for this step."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * factor
