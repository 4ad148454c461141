"""width: grow the FFN intermediate size d -> d' by duplicating neurons (Net2Net / bert2BERT), optionally with noise.

Layout of the new FFN dimension in every layer: positions 0..d-1 are the original neurons in order, followed by
whole copies of all d neurons (k-1 of them for d' = k*d) and, when d' is not a multiple of d, a seeded random
subset of d' mod d neurons (drawn per layer, without replacement, kept in index order). gate_proj and up_proj rows
(and their biases) are copied; a neuron with c copies has each copy of its down_proj column divided by c, so
the layer computes exactly the same function.

Noise (`snr_db` set) goes on down_proj columns of duplicated neurons. Let W be the grown down_proj *after* the
division by copy counts and *before* noise, restricted to the columns that receive noise (for d' = 2d: all columns).
The noise standard deviation is sigma = sqrt(mean(W**2) / 10**(snr_db / 10)), one value per tensor.
- `hypercloning` (default, Apple's HyperCloning): the copies of a neuron are paired in copy order (0 with 1, 2 with 3,
  ...); each pair gets +N on one column and -N on the other with N ~ N(0, sigma^2) per entry. A neuron's copies still
  sum to its original column, so the function is preserved at any SNR while the copies differ. With an odd copy
  count the last copy is unpaired: it gets no noise and is not part of W.
- `plain`: independent N(0, sigma^2) on every copy of every duplicated neuron (W = all those columns); the function
  changes.
The measured SNR per down_proj is 10*log10(mean(W**2) / mean(N**2)) over the same columns, with N the noise actually
drawn; it lands in growth.json. Noise is drawn and added in float32, then the tensor is cast to the output dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from growth.foundation.errors import ConfigError, PlanError
from growth.operators.base import ModelState, Operator, StepContext, TensorOp, copy_op

FFN = "ffn"
NOISE_KINDS = ("hypercloning", "plain")


@dataclass(frozen=True)
class WidthParams:
    factor: int | None = None
    """Multiply the FFN size by this integer k >= 2. Give `factor` or `intermediate_size`, not both."""
    intermediate_size: int | None = None
    """The new FFN size, any integer above the current one (neurons past a multiple are a seeded subset)."""
    snr_db: float | None = None
    """Signal-to-noise ratio in dB of the noise on duplicated down_proj columns; null for exact copies."""
    noise: str = "hypercloning"
    """hypercloning: +N/-N on pairs of copies, function preserved; plain: independent noise, not preserving."""

    def __post_init__(self) -> None:
        if (self.factor is None) == (self.intermediate_size is None):
            raise ConfigError("width: give exactly one of factor (integer k >= 2) or intermediate_size")
        if self.factor is not None and (not isinstance(self.factor, int) or isinstance(self.factor, bool)
                                        or self.factor < 2):
            raise ConfigError(f"width: factor must be an integer >= 2, got {self.factor!r}; "
                              "use intermediate_size for other sizes")
        if self.intermediate_size is not None and (not isinstance(self.intermediate_size, int)
                                                   or isinstance(self.intermediate_size, bool)):
            raise ConfigError(f"width: intermediate_size must be an integer, got {self.intermediate_size!r}")
        if self.snr_db is not None:
            if isinstance(self.snr_db, bool) or not isinstance(self.snr_db, (int, float)):
                raise ConfigError(f"width: snr_db must be a number in dB or null, got {self.snr_db!r}")
            if not math.isfinite(self.snr_db):
                raise ConfigError(f"width: snr_db must be finite, got {self.snr_db}; use null for no noise")
        if self.noise not in NOISE_KINDS:
            raise ConfigError(f"width: noise must be one of {', '.join(NOISE_KINDS)}, got {self.noise!r}")
        if self.noise == "plain" and self.snr_db is None:
            raise ConfigError("width: noise: plain needs snr_db")


@lru_cache(maxsize=8)
def neuron_map(d: int, d_new: int, seed: int, index: int, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source neuron, copy rank) for each of the d_new positions of one layer's FFN."""
    tiles, rem = divmod(d_new, d)
    src = [torch.arange(d)] * tiles
    rank = [torch.full((d,), t) for t in range(tiles)]
    if rem:
        subset = torch.randperm(d, generator=StepContext(seed, index).generator("neurons", layer))[:rem]
        src.append(subset.sort().values)
        rank.append(torch.full((rem,), tiles))
    return torch.cat(src), torch.cat(rank)


def _pairs(src: torch.Tensor, rank: torch.Tensor, d: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each m, the positions (plus, minus) of copy 2m and copy 2m+1 of every neuron that has both."""
    ranks = int(rank.max()) + 1
    pos = torch.full((ranks * d,), -1, dtype=torch.long)
    pos = pos.scatter_(0, rank * d + src, torch.arange(len(src))).view(ranks, d)  # scatter: far faster than pos[r, s]
    out = []
    for m in range(pos.shape[0] // 2):
        plus, minus = pos[2 * m], pos[2 * m + 1]
        keep = (plus >= 0) & (minus >= 0)
        out.append((plus[keep], minus[keep]))
    return out


def _add_columns(w: torch.Tensor, cols: torch.Tensor, n: torch.Tensor, alpha: float = 1.0) -> None:
    """w[:, cols] += alpha * n, as a slice when `cols` is a contiguous run (whole tiles: much faster)."""
    first = int(cols[0])
    if bool((cols == torch.arange(first, first + len(cols))).all()):
        w[:, first:first + len(cols)].add_(n, alpha=alpha)
    else:
        w.index_add_(1, cols, n, alpha=alpha)


def plan(params: WidthParams, state: ModelState, ctx: StepContext) -> tuple[dict[str, Any], list[TensorOp]]:
    key = state.arch.keys.ffn_size
    d = state.config.get(key)
    if not isinstance(d, int):
        raise PlanError(f"width (step {ctx.index + 1}): config has no integer {key!r}")
    d_new = d * params.factor if params.factor is not None else params.intermediate_size
    if d_new <= d:
        raise PlanError(f"width (step {ctx.index + 1}): target {key} {d_new} must be larger than the source's {d}")
    ops = []
    for name, (shape, dtype) in state.tensors.items():
        template, layer = state.arch.match(name)
        ffn_dims = [i for i, space in enumerate(template.dims) if space == FFN]
        if not ffn_dims:
            ops.append(copy_op(name, shape, dtype))
            continue
        if any(shape[i] != d for i in ffn_dims):
            raise PlanError(f"width (step {ctx.index + 1}): {name} has shape {list(shape)}, expected {key} {d} "
                            f"in dims {ffn_dims}")
        new_shape = tuple(d_new if i in ffn_dims else s for i, s in enumerate(shape))
        args: tuple[tuple[str, Any], ...] = (("layer", layer), ("d", d), ("d_new", d_new))
        if ffn_dims == [0]:
            ops.append(TensorOp(name, new_shape, dtype, name, "duplicate_rows", args))
        else:
            args += (("noise", params.noise if params.snr_db is not None else "none"), ("snr_db", params.snr_db))
            ops.append(TensorOp(name, new_shape, dtype, name, "split_columns", args))
    config = dict(state.config)
    config[key] = d_new
    return config, ops


def _duplicate(x: torch.Tensor, src: torch.Tensor, d: int, dim: int) -> torch.Tensor:
    """x with positions `src` along `dim`; whole tiles are block copies (much faster than a gather)."""
    tiles = len(src) // d
    parts = [x] * tiles
    if len(src) > tiles * d:
        parts.append(x.index_select(dim, src[tiles * d:]))
    return torch.cat(parts, dim=dim)


def _split(xf: torch.Tensor, src: torch.Tensor, counts: torch.Tensor, d: int) -> torch.Tensor:
    """The grown down_proj before noise: column j is xf[:, src[j]] / counts[src[j]], in one fp32 allocation.

    Divides into the first tile and copies it to the others (the values of dividing and then duplicating, without
    the temporaries): this is most of a grow's arithmetic, so its allocations and passes over memory count.
    """
    w = torch.empty((xf.shape[0], len(src)), dtype=torch.float32)
    torch.div(xf, counts.to(torch.float32), out=w[:, :d])
    tiles = len(src) // d
    for t in range(1, tiles):
        w[:, t * d:(t + 1) * d] = w[:, :d]
    if len(src) > tiles * d:
        w[:, tiles * d:] = w[:, :d].index_select(1, src[tiles * d:])
    return w


def repeats(op: TensorOp) -> int | None:
    """duplicate_rows onto a multiple of d is that many whole copies of the input: grow copies its bytes."""
    if op.kind == "duplicate_rows" and op.arg("d_new") % op.arg("d") == 0:
        return op.arg("d_new") // op.arg("d")
    return None


def _signal_power(x: torch.Tensor, src: torch.Tensor, counts: torch.Tensor, cols: torch.Tensor) -> float:
    """mean(W**2) over the noised columns, W = x[:, src] / counts[src], computed from x without building W."""
    rows = x.shape[0]
    if len(cols) == len(src) and bool((counts == counts[0]).all()):  # every copy noised, equal counts: one norm
        return torch.linalg.vector_norm(x).double().item() ** 2 / (rows * x.shape[1] * int(counts[0]) ** 2)
    column_power = torch.linalg.vector_norm(x, dim=0).double().pow(2) / counts.double().pow(2)
    return column_power[src[cols]].sum().item() / (rows * len(cols))


def apply(op: TensorOp, x: torch.Tensor | None, ctx: StepContext,
          measured: dict[str, float | None]) -> torch.Tensor:
    d, d_new = op.arg("d"), op.arg("d_new")
    src, rank = neuron_map(d, d_new, ctx.seed, ctx.index, op.arg("layer"))
    if op.kind == "duplicate_rows":
        return _duplicate(x, src, d, 0)
    counts = torch.bincount(src, minlength=d)
    xf = x.float()
    w = _split(xf, src, counts, d)
    noise, snr_db = op.arg("noise"), op.arg("snr_db")
    if noise == "none":
        return w.to(op.dtype)
    if noise == "hypercloning":
        pairs = [(p, m) for p, m in _pairs(src, rank, d) if len(p)]
        cols = torch.cat([c for pair in pairs for c in pair])
    else:
        cols = (counts[src] >= 2).nonzero().reshape(-1)
    signal = _signal_power(xf, src, counts, cols)
    del xf
    sigma = math.sqrt(signal / 10 ** (snr_db / 10))
    gen = ctx.generator("noise", op.name)
    total = 0.0
    for plus, minus in pairs if noise == "hypercloning" else [(cols, None)]:
        n = torch.empty((w.shape[0], len(plus))).normal_(0.0, sigma, generator=gen)
        _add_columns(w, plus, n)
        if minus is not None:
            _add_columns(w, minus, n, alpha=-1.0)
        total += torch.linalg.vector_norm(n).double().item() ** 2 * (1 if minus is None else 2)
    power = total / (w.shape[0] * len(cols))
    measured[op.name] = round(10 * math.log10(signal / power), 4) if power > 0 else None  # all-zero W
    return w.to(op.dtype)


OPERATOR = Operator("width", WidthParams, plan, preserves_function=lambda p: p.snr_db is None
                    or p.noise == "hypercloning", apply=apply, repeats=repeats)
