"""Squared pairwise distances, their round-off level, and the median bandwidth (median_bandwidth).

Distances use the polynomial expansion ‖x‖² + ‖y‖² - 2x·y (no cdist backward) and the Laplacian kernel's √ has
a zero subgradient at (round-off level) zero distance.  The median bandwidth of more than 4,096 points is
computed over row blocks of the upper triangle, never the full n² matrix; ``median_bandwidth(max_points=)``
subsamples.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch

from .checks import _F64, _broadcast_pair, _check_points, _out_dtype, _same_dim


def _sqdist(x: torch.Tensor, y: Optional[torch.Tensor] = None):
    """Squared Euclidean distances (float64 in, float64 out) and a per-entry round-off scale.

    The expansion ‖x‖² + ‖y‖² - 2 x·y is a polynomial, so its gradient is finite everywhere (cdist's
    backward divides by the distance).  The points are first centred on a detached mean, which changes no
    distance or gradient but reduces cancellation.  For y=None the diagonal is exactly 0 (with zero
    gradient)."""
    if y is None:
        return _SqDistSelf.apply(x)
    else:
        c = torch.cat([x.detach(), y.detach()], dim=-2).mean(dim=-2, keepdim=True)
        xc, yc = x - c, y - c
        rx, ry = (xc * xc).sum(-1), (yc * yc).sum(-1)
        scale = rx[..., :, None] + ry[..., None, :]
        if xc.dim() == 2:  # one fused product-and-add: fewer n x n buffers, forward and backward
            d2 = torch.addmm(scale, xc, yc.mT, alpha=-2.0).clamp_min(0.0)
        else:
            d2 = (scale - 2.0 * (xc @ yc.mT)).clamp_min(0.0)
    return d2, scale


class _SqDistSelf(torch.autograd.Function):
    """Pairwise squared distances of the rows of x (diagonal exactly 0) and the round-off scale
    ‖x_i‖² + ‖x_j‖² (no gradient).  The backward uses the symmetry of x xᵀ: one matrix product,
    dx = 2 (rowsum(Gs) ∘ x - Gs x) with Gs = G + Gᵀ, instead of autograd's two."""

    @staticmethod
    def forward(ctx, x):
        xc = x - x.mean(dim=-2, keepdim=True)  # distances and their gradient do not depend on the shift
        r = (xc * xc).sum(-1)
        scale = r[..., :, None] + r[..., None, :]
        # in place: each fresh n x n buffer costs as much as the arithmetic on it (page faults of a new allocation)
        d2 = (xc @ xc.mT).mul_(-2.0).add_(scale)
        keep = d2 >= 0
        keep.diagonal(dim1=-2, dim2=-1).fill_(False)
        d2.clamp_min_(0.0).diagonal(dim1=-2, dim2=-1).zero_()
        ctx.save_for_backward(xc, keep)
        ctx.mark_non_differentiable(scale)
        return d2, scale

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad, _grad_scale):
        xc, keep = ctx.saved_tensors
        g = torch.where(keep, grad, torch.zeros_like(grad))
        gs = g + g.mT
        return 2.0 * (gs.sum(-1, keepdim=True) * xc - gs @ xc)


def _roundoff_rel(dtype: torch.dtype) -> float:
    """About 50 units of round-off of the expansion ‖a‖² + ‖b‖² - 2a·b, relative to ‖a‖² + ‖b‖²."""
    return 1e-14 if dtype == _F64 else 5e-6


def _roundoff(d2: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The level below which a squared distance from the expansion (scale = ‖a‖² + ‖b‖²) is round-off, so that
    coincident points count as 0 apart."""
    return _roundoff_rel(d2.dtype) * scale.detach() + torch.finfo(d2.dtype).tiny


def _safe_dist(d2: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """√d2 with a finite gradient: entries at round-off level of the expansion count as 0 distance
    (duplicated rows), where the Laplacian kernel's cone has subgradient 0."""
    pos = d2 > _roundoff(d2, scale)
    return torch.where(pos, torch.sqrt(torch.where(pos, d2, torch.ones_like(d2))), torch.zeros_like(d2))


@functools.lru_cache(maxsize=32)
def _triu_flat(m: int, device: str):
    iu = torch.triu_indices(m, m, 1, device=device)
    return iu[0] * m + iu[1]


def _upper(d2: torch.Tensor) -> torch.Tensor:
    """The strict upper triangle of a (..., m, m) matrix as (..., m(m-1)/2), in row-major order (one gather of
    the flattened matrix: several times faster than indexing with two index tensors)."""
    return d2.flatten(-2).index_select(-1, _triu_flat(d2.shape[-1], str(d2.device)))


def _median_d2(d2: torch.Tensor) -> torch.Tensor:
    """Median of √d2 over the strict upper triangle of a (..., m, m) squared-distance matrix (detached)."""
    d2 = d2.detach()
    if d2.shape[-1] < 2:
        return torch.ones(d2.shape[:-2], dtype=d2.dtype, device=d2.device)
    return _median_pairs(_upper(d2))


def _median_pairs(v) -> torch.Tensor:
    """Median of √v over the last dimension of (..., npairs) squared pair distances (detached), with the
    degenerate-sample fallbacks of median_bandwidth.  v may be a list of 1-D parts (unbatched): the median of
    their union, without concatenating them when there are many (a copy of 2n² values costs as much as the
    selection)."""
    parts = [p.detach() for p in v] if isinstance(v, (list, tuple)) else [v.detach()]
    npairs = sum(p.shape[-1] for p in parts)
    if parts[0].dim() == 1 and npairs >= 8192:
        k = (npairs - 1) // 2
        a, b = _select_two(parts, k)
        med = 0.5 * (a.sqrt() + b.sqrt()) if npairs % 2 == 0 else a.sqrt()
        if bool(med > 0):
            return med
        return _degenerate_median(med, torch.cat(parts))
    v = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
    if npairs < 1:
        return torch.ones(v.shape[:-1], dtype=v.dtype, device=v.device)
    k = (npairs - 1) // 2
    lo2 = v.median(dim=-1).values  # the lower median, the (k+1)-th smallest; faster than kthvalue
    if npairs % 2 == 0:
        # the (k+2)-th smallest: lo2 again if it is repeated, else the smallest value above it
        above = torch.where(v > lo2[..., None], v, torch.full_like(v, math.inf)).amin(-1)
        ties = (v <= lo2[..., None]).sum(-1) >= k + 2
        med = 0.5 * (lo2.sqrt() + torch.where(ties, lo2, above).sqrt())
    else:
        med = lo2.sqrt()
    return _degenerate_median(med, v)


def _degenerate_median(med: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Degenerate samples (more than half of the pairs coincide): the mean distance, then 1."""
    mean = v.sqrt().mean(dim=-1)
    med = torch.where(med > 0, med, mean)
    return torch.where(med > 0, med, torch.ones_like(med))


def _select_two(parts: list, k: int):
    """The (k+1)-th and (k+2)-th smallest entries of the union of 1-D tensors (k + 1 < their total length),
    exactly, in about three passes: a sorted strided sample of ~4096 entries brackets rank k, one pass counts
    the entries below the bracket and keeps those inside it (~6 %), from which the two are selected.  Falls
    back to a full sort when the bracket misses (rare: its margin is 4 standard deviations of the sample rank)."""
    n = sum(p.shape[-1] for p in parts)
    step = max(1, n // 4096)
    sample = torch.cat([p[::step] for p in parts])
    ns = sample.shape[-1]
    r = int((k + 0.5) / n * ns)
    # two selections in the sample (a sort of it costs five times as much)
    lo, hi = sample.kthvalue(max(r - 128, 0) + 1).values, sample.kthvalue(min(r + 129, ns - 1) + 1).values
    below = sum(int((p < lo).sum()) for p in parts)
    inside = torch.cat([p[(p >= lo) & (p <= hi)] for p in parts])
    if below <= k and k + 1 < below + inside.shape[-1]:
        j = k - below
        a = inside.kthvalue(j + 1).values
        if int((inside <= a).sum()) >= j + 2:  # a repeated: it is the next one too
            return a, a
        return a, torch.where(inside > a, inside, torch.full_like(inside, math.inf)).amin()
    w = torch.cat(parts).sort().values
    return w[k], w[k + 1]


# an unbatched sample above this many rows has its pair distances computed in row blocks (the upper triangle only)
_MEDIAN_BLOCK = 4096


def _median64(z: torch.Tensor) -> torch.Tensor:
    """Median pairwise distance of the rows of z (float64, detached), shape z.shape[:-2]."""
    z = z.detach()
    if z.shape[-2] < 2:
        return torch.ones(z.shape[:-2], dtype=z.dtype, device=z.device)
    if z.dim() == 2 and z.shape[0] > _MEDIAN_BLOCK:
        return _median_pairs(_upper_blocks(z))
    d2, scale = _sqdist(z)
    # coincident points exactly 0 apart, so that the fallbacks for degenerate samples see them
    return _median_d2(d2.masked_fill_(d2 <= _roundoff(d2, scale), 0.0))


def _upper_blocks(z: torch.Tensor) -> list:
    """The squared distances z_i - z_j, i < j, of an unbatched sample as a list of 1-D parts, one per block of
    rows against the rows from the block's first on: half the products of the full matrix, and never its n²
    values at once (20,000 points: 1.6 GB instead of 3.2 GB plus a 1.6 GB copy of the upper triangle).
    Round-off-level values are 0, as in _median64's full path."""
    zc = z - z.mean(0, keepdim=True)  # centred: less cancellation in the expansion
    r = torch.linalg.vector_norm(zc, dim=-1).square_()
    n, parts = z.shape[0], []
    for i in range(0, n, _MEDIAN_BLOCK):
        scale = r[i : i + _MEDIAN_BLOCK, None] + r[None, i:]
        d2 = torch.addmm(scale, zc[i : i + _MEDIAN_BLOCK], zc[i:].mT, alpha=-2.0)
        # _roundoff in place: the block's scale becomes its threshold (no third buffer of the block's size)
        d2.masked_fill_(d2 <= scale.mul_(_roundoff_rel(d2.dtype)).add_(torch.finfo(d2.dtype).tiny), 0.0)
        parts.append(d2[torch.ones_like(d2, dtype=torch.bool).triu_(1)])
    return parts


def median_bandwidth(
    x: torch.Tensor,
    y: Optional[torch.Tensor] = None,
    *,
    max_points: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Median heuristic: σ = median of the pairwise Euclidean distances ‖z_i - z_j‖ (i < j) of the pooled
    sample z = [x; y] (true median: the mean of the two middle values for an even count).  Detached.

    Returns a tensor of shape x.shape[:-2] (a 0-dim tensor for unbatched input) in x's dtype.  If more
    than half of the pairs coincide the mean distance is used, and 1.0 if all points coincide.
    max_points: for a pooled sample larger than this (unbatched), the median over max_points of its points
    drawn at random with ``generator`` (large samples: all pairs of 100,000 points would take 40 GB)."""
    out = _out_dtype(x)
    x64 = _check_points(x, "x")
    if y is not None:
        y64 = _check_points(y, "y")
        _same_dim(x64, y64, "median_bandwidth")
        x64, y64 = _broadcast_pair(x64, y64)
        x64 = torch.cat([x64, y64], dim=-2)
    if max_points is not None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
            raise ValueError(f"max_points must be an integer >= 2 (got {max_points!r})")
        if x64.dim() != 2:
            raise ValueError("max_points subsamples unbatched samples only (got batch dimensions)")
        if x64.shape[0] > max_points:
            x64 = x64[_subsample(x64.shape[0], max_points, generator).to(x64.device)]
    return _median64(x64).to(out)


def _subsample(n: int, k: int, generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator)[:k]
