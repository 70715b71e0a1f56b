"""Large samples: the pooled divergence by a Nyström approximation (nystrom_divergence) and by stochastic
Lanczos quadrature (lanczos_divergence), detached and unbatched, for evaluation on thousands of vectors.

*Large samples*: the exact pooled measure costs an n_x² and an n_y² eigendecomposition (10,000 against
10,000 vectors of width 2048: five minutes and 6 GB on two cores); ``nystrom_divergence`` approximates it
with m landmarks (O(n m (d + m))), exact with every point as a landmark, an underestimate otherwise
(measured in docs/mbrce.md); ``lanczos_divergence`` keeps x's side exact and estimates y's by stochastic Lanczos
quadrature (no n_y² eigendecomposition, K_YY in memory), within about 1 % of the exact value where measured.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .checks import (
    _F64,
    DEFAULT_EPS,
    Sigma,
    _check_alpha,
    _check_eps,
    _check_kernel,
    _check_points,
    _check_pooled,
    _out_dtype,
    _same_dim,
)
from .distances import _subsample, median_bandwidth
from .estimators import _pooled64
from .kernels import _gram64, _gram_blocks, _resolve_sigma
from .spectral import _BilinearTrace, _eigh, _g, _trace


# ----------------------------------------------------------------------------------------------------
# large samples: Nyström approximation of the pooled measure
# ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def nystrom_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = "median",
    *,
    landmarks: int = 1000,
    mix: float = 0.0,
    eps: float = DEFAULT_EPS,
    median_points: int = 2000,
    chunk: int = 4096,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """The pooled divergence of two large samples (evaluation: thousands of feature vectors), approximated
    with a Nyström feature map.  Detached (no gradient), float64, unbatched x (n_x, d) and y (n_y, d).

    m = ``landmarks`` points L drawn from the pooled sample (x and y in proportion) give the features
    φ(z) = K_zL K_LL^(-½) (eigenvalues of K_LL below its round-off level dropped), and the covariance
    operators C_X = Φ_Xᵀ Φ_X / n_x, C_Y likewise, are m × m: the same formula as pooled_divergence in
    the span of the landmarks' features.  Cost: O((n_x + n_y) m (d + m) + m³) time, computed in chunks of
    ``chunk`` rows, O(chunk · m + m²) memory.  With landmarks ≥ n_x + n_y (every point a landmark) the
    value is the exact one, computed as pooled_divergence does (an n_x² and an n_y² eigendecomposition,
    cheaper than the (n_x + n_y)² one of K_LL).  sigma="median": the median pairwise distance of
    ``median_points`` points drawn from the pooled sample (all of them if fewer).  ``generator`` seeds both
    draws.  Measured error against the exact value: docs/mbrce.md, section 7."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    _check_kernel(kernel)
    mix = _check_pooled(alpha, mix)
    out = _out_dtype(x)
    counts = (("landmarks", landmarks, 2), ("median_points", median_points, 2), ("chunk", chunk, 2))
    x64, y64, s = _large_samples(x, y, sigma, median_points, generator, "nystrom_divergence", counts)
    nx, ny = x64.shape[0], y64.shape[0]
    m_all = nx + ny
    if landmarks >= m_all:  # every point a landmark: the exact value
        return _pooled64(*_gram_blocks(x64, y64, kernel, s), alpha, mix, eps, True).to(out)
    # x and y in proportion to their sizes
    mx = min(nx, max(1, round(landmarks * nx / m_all)))
    my = min(ny, landmarks - mx)
    ix, iy = _subsample(nx, mx, generator), _subsample(ny, my, generator)
    lm = torch.cat([x64[ix.to(x64.device)], y64[iy.to(x64.device)]])
    return _nystrom64(x64, y64, lm, kernel, s, alpha, mix, eps, chunk).to(out)


def _large_samples(x, y, sigma, median_points, generator, what: str, counts):
    """The large-sample estimators' inputs: unbatched float64 samples, their integer options (name, value, minimum)
    checked, and σ as given or the median distance of ``median_points`` pooled points drawn with ``generator``."""
    x64, y64 = _check_points(x, "x"), _check_points(y, "y")
    _same_dim(x64, y64, what)
    if x64.dim() != 2 or y64.dim() != 2:
        raise ValueError(f"{what} takes unbatched samples x (n_x, d) and y (n_y, d)")
    for name, v, low in counts:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an integer >= {low} (got {v!r})")
    if not isinstance(sigma, str):
        s = _resolve_sigma(sigma, x64)
        if s.numel() != 1:
            raise ValueError(f"{what} takes one sigma (got a tensor of shape {tuple(sigma.shape)})")
        return x64, y64, s.reshape(())
    if sigma != "median":
        _resolve_sigma(sigma, x64)  # raises
    return x64, y64, median_bandwidth(x64, y64, max_points=median_points, generator=generator)


def _nystrom64(x64, y64, lm, kernel, s, alpha, mix, eps, chunk):
    """The pooled divergence in the span of the Nyström features of the landmarks lm (see nystrom_divergence)."""
    lam, q = _eigh(_gram64(lm, None, kernel, s))
    keep = lam > lm.shape[0] * torch.finfo(_F64).eps * lam[-1]  # round-off level of K_LL's spectrum
    t = q[:, keep] * lam[keep].rsqrt()

    def cov(a):
        acc = torch.zeros(t.shape[1], t.shape[1], dtype=_F64, device=a.device)
        for i in range(0, a.shape[0], chunk):
            phi = _gram64(a[i : i + chunk], lm, kernel, s) @ t
            acc += phi.mT @ phi
        return acc

    nx, ny = x64.shape[0], y64.shape[0]
    ax, ay = cov(x64), cov(y64)
    cx = ax / nx
    cy = ay / ny if mix == 0.0 else (1.0 - mix) * ay / ny + mix * (ax + ay) / (nx + ny)
    tr = _BilinearTrace.apply(cx, None, cy, alpha, 1.0 - alpha, eps, True)
    return (torch.log(tr) - torch.log(_trace(cx))) / (alpha - 1.0)


# ----------------------------------------------------------------------------------------------------
# large samples: stochastic Lanczos quadrature of the pooled measure
# ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def lanczos_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = "median",
    *,
    top: int = 64,
    probes: int = 32,
    steps: int = 100,
    eps: float = DEFAULT_EPS,
    median_points: int = 2000,
    block: int = 4096,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """The pooled divergence (α < 1, no mix) of a sample x against a larger sample y, with x's side exact and y's
    by stochastic Lanczos quadrature.  Detached, float64, unbatched x (n_x, d) and y (n_y, d).

    tr(C_X^α C_Y^(1-α)) = Σ_i λ_i^α v_iᵀ C_Y^(1-α) v_i over the eigenpairs (λ_i, v_i) of C_X, from one exact
    n_x × n_x eigendecomposition.  The ``top`` largest terms are computed one by one; the rest is a Hutchinson
    estimate from ``probes`` random combinations z = Σ_i ξ_i λ_i^(α/2) v_i (ξ = ±1).  Each quadratic form
    zᵀ C_Y^(1-α) z is Gauss quadrature from ``steps`` Lanczos steps of C_Y started at z, carried out on
    coefficient vectors over y's rows (C_Y Φ_Yᵀ c = Φ_Yᵀ K_YY c / n_y), one product with K_YY per step for all
    columns at once.  Only positive powers of C_Y appear, so no eigenvalue of y's side is clamped or dropped.
    Cost: O(n_x³ + steps (top + probes) n_y² + n_y² d) time, no n_y² eigendecomposition; memory: K_YY in
    float64, 8 n_y² bytes (20,000: 3.2 GB; 50,000: 20 GB), plus O(n_y (top + probes)).  K_YY is not rounded
    to float32: that perturbs its near-zero eigenvalues by ~1e-7, whose powers 1-α then move the value by about
    1 %.  With top ≥ n_x and steps > n_y it is exact for a well-conditioned K_YY; the Lanczos vectors are not
    reorthogonalised, so an ill-conditioned one needs more steps (about 4 n_y at d = 5 in a check).  The
    quadrature overestimates tr(...) slightly (the power's derivatives of even order are negative), so the
    divergence comes out slightly low: measured error
    in docs/mbrce.md, section 7.  sigma="median": the median distance of ``median_points`` pooled points
    drawn with ``generator``, which also draws the probes.  ``eps``: the threshold of the regularised powers, as
    in the exact estimators.  Put the smaller sample first: it is the exact side."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    _check_kernel(kernel)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"lanczos_divergence takes 0 < alpha < 1 (got {alpha}); use pooled_divergence for mix > 0")
    if top + probes < 1:
        raise ValueError("top + probes must be at least 1 (e.g. top=64, probes=32)")
    counts = (("top", top, 0), ("probes", probes, 0), ("steps", steps, 1), ("median_points", median_points, 2))
    counts += (("block", block, 1),)
    x64, y64, s = _large_samples(x, y, sigma, median_points, generator, "lanczos_divergence", counts)
    nx, ny = x64.shape[0], y64.shape[0]
    lam, u = _eigh(_gram64(x64, None, kernel, s))
    lam = lam / nx
    keep = lam > nx * torch.finfo(_F64).eps * lam[-1]  # x's features: eigenvalues above round-off
    lam, u = lam[keep], u[:, keep]
    coef = _lanczos_probes(lam, alpha, top, probes, generator)
    a = u @ coef / math.sqrt(nx)  # z = Φ_Xᵀ a
    z2 = (coef * coef * lam[:, None]).sum(0)  # ‖z‖²
    kyy = torch.empty(ny, ny, dtype=_F64, device=y64.device)
    h = torch.empty(ny, a.shape[1], dtype=_F64, device=y64.device)  # h = K_YX a: ⟨z, Φ_Yᵀ c⟩ = hᵀ c
    for i in range(0, ny, block):
        kyy[i : i + block] = _gram64(y64[i : i + block], y64, kernel, s)
        h[i : i + block] = _gram64(y64[i : i + block], x64, kernel, s) @ a
    q = _lanczos_quadrature(kyy, h, z2, 1.0 - alpha, steps, eps)
    ndet = min(top, lam.shape[0])
    t = q[:ndet].sum() + (q[ndet:].mean() if q.shape[0] > ndet else 0.0)
    return (torch.log(t) / (alpha - 1.0)).to(_out_dtype(x))  # tr C_X = 1


def _lanczos_probes(lam, alpha, top, probes, generator):
    """Coefficients of the start vectors z = Σ_i c_i √λ_i v_i: the top eigenvectors scaled to λ_i^(α/2) each, then
    ±1 combinations of the rest (none when the top ones are all of them)."""
    r = lam.shape[0]
    ndet = min(top, r)
    w = lam.pow((alpha - 1.0) / 2.0)  # c_i √λ_i = λ_i^(α/2)
    cols = []
    if ndet:
        det = torch.zeros(r, ndet, dtype=_F64, device=lam.device)
        det[torch.arange(r - ndet, r), torch.arange(ndet)] = w[r - ndet :]
        cols.append(det)
    if ndet < r and probes:
        signs = torch.randint(0, 2, (r - ndet, probes), generator=generator).to(_F64).mul_(2.0).sub_(1.0)
        rnd = torch.zeros(r, probes, dtype=_F64, device=lam.device)
        rnd[: r - ndet] = signs.to(lam.device) * w[: r - ndet, None]
        cols.append(rnd)
    return torch.cat(cols, 1)


def _lanczos_quadrature(kyy, h, z2, p, steps, eps):
    """zᵀ g_p(C_Y) z for each column of start vectors z (0 < p < 1), by Gauss quadrature from Lanczos on C_Y, with
    the regularised power g_p of the exact estimators: a Ritz value at round-off (z's part outside y's features
    has eigenvalue 0) then contributes ~0, where θ^p of a small p would not (1e-14^0.1 = 0.04).

    A Lanczos vector is s z + Φ_Yᵀ c: kept as (s, c, K_YY c), so inner products need no extra product:
    ⟨z, z⟩ = z2, ⟨z, Φ_Yᵀ c⟩ = hᵀ c, ⟨Φ_Yᵀ c, Φ_Yᵀ c'⟩ = cᵀ K_YY c'.  A column whose Krylov space is exhausted
    (β at round-off) continues as zeros, which decouples its tridiagonal matrix."""
    ny, m = h.shape
    s_prev = torch.zeros(m, dtype=_F64, device=h.device)
    c_prev = torch.zeros(ny, m, dtype=_F64, device=h.device)
    kc_prev = torch.zeros_like(c_prev)
    s_cur, c_cur, kc_cur = z2.rsqrt(), torch.zeros_like(c_prev), torch.zeros_like(c_prev)
    b_prev = torch.zeros(m, dtype=_F64, device=h.device)
    alphas, betas = [], []
    for j in range(steps):
        cw = (s_cur * h + kc_cur) / ny  # C_Y q in y's coefficients
        kcw = kyy @ cw
        al = s_cur * (h * cw).sum(0) + (c_cur * kcw).sum(0)
        alphas.append(al)
        if j == steps - 1:
            break
        s_new = -al * s_cur - b_prev * s_prev
        c_new = cw - al * c_cur - b_prev * c_prev
        kc_new = kcw - al * kc_cur - b_prev * kc_prev
        b2 = s_new * s_new * z2 + 2.0 * s_new * (h * c_new).sum(0) + (c_new * kc_new).sum(0)
        b = b2.clamp_min(0.0).sqrt()
        live = b > 1e-12 * (al.abs() + b_prev)  # β at round-off: the Krylov space is exhausted
        inv = torch.where(live, 1.0 / torch.where(live, b, torch.ones_like(b)), torch.zeros_like(b))
        b = torch.where(live, b, torch.zeros_like(b))
        betas.append(b)
        s_prev, c_prev, kc_prev, b_prev = s_cur, c_cur, kc_cur, b
        s_cur, c_cur, kc_cur = s_new * inv, c_new * inv[None, :], kc_new * inv[None, :]
    k = len(alphas)
    tri = torch.diag_embed(torch.stack(alphas, 1))
    if k > 1:
        off = torch.diag_embed(torch.stack(betas, 1), offset=1)
        tri = tri + off + off.mT
    theta, vec = torch.linalg.eigh(tri)
    return z2 * (vec[:, 0, :].square() * _g(theta, p, eps)[0]).sum(-1)
