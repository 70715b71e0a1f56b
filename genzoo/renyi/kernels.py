"""Gram matrices: the Gaussian and Laplacian kernels, σ (a number, a tensor or "median"), the unit-diagonal
Gram blocks of a pooled sample Z = [x; y], and the fused Gaussian blocks of the training loss.

*No work for inputs that need no gradient*: the Gram blocks K_XX, K_XY, K_YY are built block by block, so
a target sample without gradient (a prior draw, frozen real codes) has its block and the median bandwidth
outside the autograd graph, and the spectral functions skip its side.

*Few passes over n² memory* (at n = 256-1024 a pass over an n × n float64 matrix costs about as much as a
matrix product's share of it): the Gaussian blocks are one fused function (_GaussianBlocks: distances, median
and kernel in three buffers; a backward of one product per block); the 1/n of κ = K/n folds into eigenvalues,
weight vectors; eigh reads the lower triangle of matrices symmetric by construction; at
α = 0.5 the Loewner matrix is applied in place from its closed form.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Optional

import torch

from .checks import Sigma, _broadcast_pair, _check_kernel, _check_points, _out_dtype, _same_dim
from .distances import (
    _median64,
    _median_d2,
    _median_pairs,
    _roundoff,
    _safe_dist,
    _sqdist,
    _SqDistSelf,
    _upper,
)


def _resolve_sigma(sigma: Sigma, *pts: torch.Tensor, d2: Optional[torch.Tensor] = None):
    """Return σ as a float64 tensor broadcastable against (..., n, m) Gram matrices.  For "median", d2 may
    be the precomputed squared distances of the pooled points (saves recomputing them)."""
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f"sigma must be a positive number, a tensor or 'median' (got {sigma!r})")
        if d2 is not None:
            return _median_d2(d2)[..., None, None]
        z = pts[0] if len(pts) == 1 else torch.cat(_broadcast_pair(pts[0], pts[1]), dim=-2)
        return _median64(z)[..., None, None]
    if isinstance(sigma, torch.Tensor):
        s = sigma.to(device=pts[0].device, dtype=pts[0].dtype)
        with torch.no_grad():
            ok = bool(torch.isfinite(s).all() and (s > 0).all())
        if not ok:
            raise ValueError("sigma must be finite and > 0 (got a tensor with non-positive or non-finite entries)")
        return s[..., None, None]
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not math.isfinite(float(sigma)) or sigma <= 0:
        raise ValueError(f"sigma must be a finite number > 0, a tensor or 'median' (got {sigma!r})")
    return torch.tensor(float(sigma), dtype=pts[0].dtype, device=pts[0].device)


def _kernel64(d2, scale, kernel: str, sigma: torch.Tensor) -> torch.Tensor:
    if kernel == "gaussian":
        rate = -0.5 / (sigma * sigma)  # a scalar (or per-batch) factor: one n x n pass fewer than -d2 / (2 sigma^2)
        if not (d2.requires_grad or rate.requires_grad):
            return (d2 * rate).exp_()
        return torch.exp(d2 * rate)
    return torch.exp(-_safe_dist(d2, scale) / sigma)


def _gram64(x, y, kernel, sigma):
    d2, scale = _sqdist(x, y)
    return _kernel64(d2, scale, kernel, sigma)


def gram_matrix(
    x: torch.Tensor, y: Optional[torch.Tensor] = None, kernel: str = "gaussian", sigma: Sigma = 1.0
) -> torch.Tensor:
    """Kernel matrix K_ij = k(x_i, y_j) (y defaults to x), shape (..., n, m), in x's dtype.

    kernel: "gaussian" exp(-‖x-y‖²/(2σ²)) or "laplacian" exp(-‖x-y‖/σ).  sigma: a number, a tensor
    broadcastable to the batch shape, or "median" (median_bandwidth of the pooled x and y, detached).
    Gradients are finite at zero distance (duplicated rows) for both kernels."""
    _check_kernel(kernel)
    out = _out_dtype(x)
    x64 = _check_points(x, "x")
    y64 = None
    if y is not None:
        y64 = _check_points(y, "y")
        _same_dim(x64, y64, "gram_matrix")
        x64, y64 = _broadcast_pair(x64, y64)
    s = _resolve_sigma(sigma, x64) if y64 is None else _resolve_sigma(sigma, x64, y64)
    return _gram64(x64, y64, kernel, s).to(out)


def _normalize64(k: torch.Tensor) -> torch.Tensor:
    """K_ij / (n √(K_ii K_jj)) for a square (..., n, n) kernel matrix of this module.  Both kernels have
    K_ii = exp(0) = 1 exactly (the diagonal of the distance matrix is exactly 0, with zero gradient), so
    this is K / n; a kernel without unit diagonal would need the general formula."""
    return k / k.shape[-1]


def _gram_blocks(x64, y64, kernel, sigma, cross: bool = True):
    """Unit-diagonal Gram blocks K_XX, K_XY, K_YY of Z = [x; y] with one σ (median of all pairwise
    distances of Z when sigma="median").

    Built block by block, so that a sample that needs no gradient (a prior draw, frozen real codes) costs
    no backward work: its block and the median stay outside the autograd graph, and the spectral functions
    then skip its branch.  With cross=False K_XY is not returned (None); its distances are still computed,
    without gradient, when the median needs them.  The Gaussian kernel (the training default) takes the
    fused _GaussianBlocks, unless σ is a tensor that needs a gradient or carries batch dimensions the points
    lack; the rest composes the generic pieces."""
    median = isinstance(sigma, str)
    if median and sigma != "median":
        _resolve_sigma(sigma, x64)  # raises the usual message
    if kernel == "gaussian":
        s = None if median else _resolve_sigma(sigma, x64)
        if s is None or _fits_fused(s, x64):
            kxx, kxy, kyy = _GaussianBlocks.apply(x64, y64, s, cross)
            return kxx, kxy, kyy
    dxx, sxx = _SqDistSelf.apply(x64)
    dyy, syy = _SqDistSelf.apply(y64)
    dxy = sxy = None
    if cross or median:
        with torch.set_grad_enabled(cross and torch.is_grad_enabled()):
            dxy, sxy = _sqdist(x64, y64)
    if median:
        pairs = [_upper(dxx.detach()), dxy.detach().flatten(-2), _upper(dyy.detach())]
        s = _median_pairs(pairs)[..., None, None]
    else:
        s = _resolve_sigma(sigma, x64)
    kxy = _kernel64(dxy, sxy, kernel, s) if cross else None
    return _kernel64(dxx, sxx, kernel, s), kxy, _kernel64(dyy, syy, kernel, s)


def _fits_fused(s: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether a given σ suits _GaussianBlocks: no gradient wanted for it (the fused backward has none) and a
    shape that broadcasts into the points' batch shape (its kernel is computed in place)."""
    if s.requires_grad or s.dim() > x.dim():
        return False
    batch = tuple(x.shape[:-2]) + (1, 1)
    # by hand: torch.broadcast_shapes costs ~80 µs, as much as the rest of a small call's set-up
    return all(a == 1 or a == b for a, b in zip(reversed(s.shape), reversed(batch)))


def _sqdist_buffer(a: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
    """‖a_i - b_j‖² of centred points (b = a when None: diagonal exactly 0) as one fresh buffer, by the
    expansion ‖a‖² + ‖b‖² - 2 a·b (one product accumulated into the norms' sum), clamped at 0."""
    ra = torch.linalg.vector_norm(a, dim=-1).square_()  # a reduction: no n x d temporary
    bb = a if b is None else b
    rb = ra if b is None else torch.linalg.vector_norm(b, dim=-1).square_()
    d = ra[..., :, None] + rb[..., None, :]
    if d.dim() == 2:
        d.addmm_(a, bb.mT, alpha=-2.0)
    else:
        d.add_(a @ bb.mT, alpha=-2.0)
    d.clamp_min_(0.0)
    if b is None:
        d.diagonal(dim1=-2, dim2=-1).zero_()
    return d


def _fused_median(dxx, dxy, dyy, xc, yc) -> torch.Tensor:
    """The median distance of Z = [x; y] from the blocks' squared distances, as median_bandwidth computes it.

    The buffers keep round-off-level distances (zeroing them would move kernel values by ~1e-14 on every
    step), which only matters where the median itself is at round-off level, i.e. more than half of the pairs
    coincide (a collapsed batch): there the median is taken again with round-off distances as 0, so that the
    degenerate-sample fallbacks apply instead of a round-off σ."""
    med = _median_pairs([_upper(dxx), dxy.flatten(-2), _upper(dyy)])
    r = torch.maximum(xc.square().sum(-1).amax(-1), yc.square().sum(-1).amax(-1))
    collapsed = med.square() <= 2.0 * _roundoff(r, 2.0 * r)
    if bool(collapsed.any()):
        med = torch.where(collapsed, _median64(torch.cat([xc, yc], dim=-2)), med)
    return med


class _GaussianBlocks(torch.autograd.Function):
    """The Gaussian Gram blocks exp(-‖z_i - z_j‖² / (2σ²)) of Z = [x; y]: K_XX, K_XY (None unless cross),
    K_YY, with σ given (a tensor) or, when None, the median pairwise distance of Z (detached).

    The hot path of a training step, fused: three n² buffers hold the squared distances, serve the median
    and become the kernel values in place; the backward takes the blocks' gradients G to the points in a
    few passes and one product per block: with H = G ∘ K (G + Gᵀ for a diagonal block) and
    rate = -1/(2σ²), dL/dx_i = 2 rate Σ_j H_ij (x_i - z_j) = 2 rate (rowsum(H)_i x_i - (H z)_i).  Where
    the expansion's round-off was clamped to 0 (duplicated points) the distance's gradient 2 (x_i - z_j) is
    itself ~0, as the exact one is.  Outputs that depend only on inputs without gradient are marked
    non-differentiable, so that the spectral functions skip their branch."""

    @staticmethod
    def forward(ctx, x, y, sigma, cross):
        ctx.set_materialize_grads(False)
        # centred points: the same distances with less cancellation in the expansion; each diagonal block on its
        # own sample's mean (x and y may lie far apart, as codes and prior do early in training), the cross
        # block on the pooled mean
        nx, ny = x.shape[-2], y.shape[-2]
        mx, my = x.mean(-2, keepdim=True), y.mean(-2, keepdim=True)
        xs, ys = x - mx, y - my
        kxx, kyy = _sqdist_buffer(xs), _sqdist_buffer(ys)
        xc = yc = kxy = None
        if cross or sigma is None:
            c = (nx * mx + ny * my) / (nx + ny)
            xc, yc = x - c, y - c
            kxy = _sqdist_buffer(xc, yc)
        if sigma is None:
            sigma = _fused_median(kxx, kxy, kyy, xc, yc)[..., None, None]
        rate = -0.5 / (sigma * sigma)
        for k in (kxx, kxy, kyy):
            if k is not None:
                k.mul_(rate).exp_()
        if not cross:  # its distances only served the median
            xc = yc = kxy = None
        need_x, need_y = ctx.needs_input_grad[:2]
        ctx.save_for_backward(xs, ys, xc, yc, kxx, kxy, kyy, rate)
        for k, live in ((kxx, need_x), (kxy, need_x or need_y), (kyy, need_y)):
            if k is not None and not live:
                ctx.mark_non_differentiable(k)
        return kxx, kxy, kyy

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gxx, gxy, gyy):
        xs, ys, xc, yc, kxx, kxy, kyy, rate = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[:2]
        hxy = gxy * kxy if gxy is not None and (need_x or need_y) else None
        dx = dy = None
        if need_x:
            dx = _pull(gxx, kxx, xs, hxy, xc, yc)
            dx = None if dx is None else dx.mul_(2.0 * rate)
        if need_y:
            dy = _pull(gyy, kyy, ys, None if hxy is None else hxy.mT, yc, xc)
            dy = None if dy is None else dy.mul_(2.0 * rate)
        return dx, dy, None, None


def _pull(g_self, k_self, pts, h_cross, pts_c, other):
    """Σ_j H_ij (p_i - z_j) over a diagonal block (H = (G + Gᵀ) ∘ K, z = p, the points centred as for its
    distances) and a cross block (H given; p_i and z_j = other, both centred on the pooled mean):
    rowsum(H) ∘ p - H z summed over the blocks, or None when neither block has a gradient."""
    terms = []  # (H, the points p_i, the points z_j)
    if g_self is not None:
        terms.append((torch.add(g_self, g_self.mT).mul_(k_self), pts, pts))
    if h_cross is not None:
        terms.append((h_cross, pts_c, other))
    if not terms:
        return None
    h0, p0, _ = terms[0]
    acc = h0.sum(-1, keepdim=True) * p0
    for h, p, _ in terms[1:]:
        acc.addcmul_(h.sum(-1, keepdim=True), p)
    for h, _, z in terms:  # the products accumulate into the same buffer
        if acc.dim() == 2:
            acc.addmm_(h, z, alpha=-1.0)
        else:
            acc.sub_(h @ z)
    return acc


def normalized_gram(x: torch.Tensor, kernel: str = "gaussian", sigma: Sigma = 1.0) -> torch.Tensor:
    """Trace-normalised Gram matrix A_ij = K_ij / (n √(K_ii K_jj)) (tr A = 1), in x's dtype."""
    _check_kernel(kernel)
    out = _out_dtype(x)
    x64 = _check_points(x, "x")
    return _normalize64(_gram64(x64, None, kernel, _resolve_sigma(sigma, x64))).to(out)
