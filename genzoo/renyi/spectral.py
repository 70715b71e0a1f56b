"""Spectral functions with stable derivatives: traces of regularised matrix powers, tr g(S) and
tr(f(S1) B g(S2) Bᵀ), as custom autograd Functions, their Loewner matrices, and the integer-power fast paths.

*Gradients (why not autograd through torch.linalg.eigh).*  eigh's backward divides by λ_i - λ_j.
Measured: for equidistant points (a Gram matrix with one eigenvalue of multiplicity n-1) autograd through
``torch.linalg.eigh`` of the bipartite divergence returns NaN gradients, with or without 1e-10..1e-6
diagonal jitter (jitter does not split equal eigenvalues, and it shifts the value); duplicated rows give
repeated (zero) eigenvalues too.  Every spectral quantity here is a trace function, tr g(S) or
tr(f(S1) B g(S2) Bᵀ), whose derivative needs no eigenvector derivatives: d tr g(S) = tr(g'(S) dS) and,
for the bilinear traces, the Daleckii–Krein formula d f(S) = V (Γ ∘ (Vᵀ dS V)) Vᵀ with the Loewner matrix
Γ_ij = (f(λ_i) - f(λ_j)) / (λ_i - λ_j), Γ_ii = f'(λ_i).  Γ is computed with stable divided differences
(λ_>^(p-1) expm1(p t)/expm1(t), t = -|log λ_i - log λ_j|, for powers; a direct quotient or the midpoint
derivative for eigenvalues below the power region), so it stays finite and accurate for equal eigenvalues,
and the result does not depend on the (arbitrary) eigenbasis of a repeated eigenvalue: the gradient at the
equidistant configuration matches central finite differences to 1e-9.  These are custom
``torch.autograd.Function``s (first-order only: no double backward).

*Eigenvalue threshold ``eps``* (absolute, default 1e-12, for the matrices whose powers are taken, which have
trace 1, except the mirrored M = κ2^β κ1 κ2^β: M's scale is ~λ_max(κ)^(1/α), so its threshold is relative,
n·u·λ_max(M)·(eps/1e-12), its round-off level at the default eps; an absolute 1e-12 cut genuine eigenvalues
of M, 1.8e-4 of error at α = 0.3 against 50-digit arithmetic).  The eigenvalue function g_p(λ) used for λ^p is
  - p < 0:      max(λ, ε)^p (the clamp; zero derivative below ε) for the bipartite/mirrored measures, as in
                the published estimators; pseudo-inverse (dropped below ε, see estimators.py) in the pooled one,
  - 0 < p < 1:  λ^p for λ ≥ ε, and below ε the C¹ quadratic ε^p ((2-p) t + (p-1) t²), t = max(λ,0)/ε,
                so zero eigenvalues contribute exactly 0 (the entropy of n identical points is 0, not
                ~n ε^p) and the derivative is bounded by max(p, 2-p) ε^(p-1) instead of diverging,
  - p ≥ 1:      max(λ, 0)^p (smooth; no clamp needed).
For well-conditioned matrices (all eigenvalues ≥ 2ε) this is exactly λ^p.  Raise ``eps`` (e.g. 1e-8) to
tame gradients of α < 1 estimators on rank-deficient batches; negative powers of ill-conditioned Gram
matrices (bipartite/mirrored with α > 1) are dominated by the clamp, as in the reference.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch

# relative gap below which two eigenvalues are "equal" for the non-power divided differences
_CLOSE = 1e-6


def _g(lam: torch.Tensor, p: float, eps: float, trunc: bool = False):
    """The regularised power g_p(λ) and its derivative (see the module docstring)."""
    zero = torch.zeros_like(lam)
    if p < 0 and trunc:
        # pseudo-inverse semantics: λ^p s(λ/ε), s a C¹ smoothstep from 0 (λ ≤ ε) to 1 (λ ≥ 2ε)
        lt = lam.clamp_min(eps)
        u = (lam / eps - 1.0).clamp(0.0, 1.0)
        sm = u * u * (3.0 - 2.0 * u)
        dsm = 6.0 * u * (1.0 - u) / eps
        pw = lt.pow(p)
        return pw * sm, p * lt.pow(p - 1.0) * sm + pw * dsm
    if p < 0:
        lt = lam.clamp_min(eps)
        return lt.pow(p), torch.where(lam > eps, p * lt.pow(p - 1.0), zero)
    if p < 1:
        lt = lam.clamp_min(eps)
        t = (lam / eps).clamp(0.0, 1.0)
        gq = eps**p * ((2.0 - p) * t + (p - 1.0) * t * t)
        dq = eps ** (p - 1.0) * ((2.0 - p) + 2.0 * (p - 1.0) * t)
        above = lam >= eps
        return (
            torch.where(above, lt.pow(p), gq),
            torch.where(above, p * lt.pow(p - 1.0), torch.where(lam > 0, dq, zero)),
        )
    lt = lam.clamp_min(0.0)
    if p == 1:
        return lt, (lam > 0).to(lam.dtype)
    return lt.pow(p), p * lt.pow(p - 1.0)


def _power_region(lam: torch.Tensor, p: float, eps: float, trunc: bool = False) -> torch.Tensor:
    """Where g_p(λ) = λ^p exactly (the divided differences there use the exact expm1 form)."""
    if p < 0 and trunc:
        return lam >= 2.0 * eps
    return lam > 0 if p >= 1 else lam >= eps


def _divided_differences(a, b, p, eps, trunc):
    """(g(a) - g(b)) / (a - b) by the direct quotient, or g' at the midpoint when the relative gap is
    below 1e-6 (error ~1e-10 relative either way); used where an eigenvalue is outside the power region."""
    ga, _ = _g(a, p, eps, trunc)
    gb, _ = _g(b, p, eps, trunc)
    diff = a - b
    close = diff.abs() <= _CLOSE * torch.maximum(a.abs(), b.abs()).clamp_min(eps)
    direct = (ga - gb) / torch.where(close, torch.ones_like(diff), diff)
    _, dmid = _g(0.5 * (a + b), p, eps, trunc)
    return torch.where(close, dmid, direct)


@functools.lru_cache(maxsize=32)
def _upper_mask(n: int, device: str):
    return torch.ones(n, n, dtype=torch.bool, device=device).triu()


def _loewner(lam: torch.Tensor, p: float, eps: float, trunc: bool = False) -> torch.Tensor:
    """Loewner matrix Γ_ij = (g(λ_i) - g(λ_j)) / (λ_i - λ_j), Γ_ii = g'(λ_i), for ascending λ (eigh).

    Between eigenvalues of the power region (g = λ^p): Γ_ij = λ_>^(p-1) expm1(p t)/expm1(t) with
    t = -|log λ_i - log λ_j| ≤ 0 and λ_> the larger one, exact to rounding for any gap (t = 0 gives p)
    and free of overflow.  The rows/columns of the (leading, since λ is sorted) eigenvalues outside the
    power region use _divided_differences.  Callers go through _loewner_times, which has closed forms for
    p = ±0.5."""
    n = lam.shape[-1]
    reg = _power_region(lam, p, eps, trunc)
    k = int((~reg).sum(-1).max()) if lam.numel() else 0
    # clamp only what lies outside the power region (those rows/columns are replaced below)
    lt = lam.clamp_min(torch.finfo(lam.dtype).tiny if p >= 1 else eps)
    logl = lt.log()
    t = logl[..., :, None] - logl[..., None, :]
    t = t.abs_().neg_()
    gam = torch.expm1(t * p).div_(torch.expm1(t))
    gam = torch.nan_to_num_(gam, nan=p)  # t = 0: the limit p
    bp = lt.pow(p - 1.0)
    gam.mul_(torch.where(_upper_mask(n, str(lam.device)), bp[..., None, :], bp[..., :, None]))
    if k:
        strip = _divided_differences(lam[..., :k, None], lam[..., None, :], p, eps, trunc)
        gam[..., :k, :] = strip
        gam[..., :, :k] = strip.mT
    return gam


def _loewner_times(lam: torch.Tensor, p: float, eps: float, trunc: bool, x: torch.Tensor) -> torch.Tensor:
    """Γ ∘ x for the Loewner matrix of _loewner, in place in x (a fresh buffer of the caller's).  At α = 0.5
    (p = ±0.5, the default) from the closed forms, with no cancellation and without building Γ."""
    if abs(p) != 0.5:
        return x.mul_(_loewner(lam, p, eps, trunc))
    k = int((~_power_region(lam, p, eps, trunc)).sum(-1).max()) if lam.numel() else 0
    if k:  # the strip of eigenvalues outside the power region: divided differences, as in _loewner
        rows, cols = x[..., :k, :].clone(), x[..., :, :k].clone()
    r = lam.clamp_min(eps).sqrt()
    if p < 0:  # (1/√a - 1/√b)/(a - b) = -1/(√a √b (√a + √b))
        q = r.reciprocal()
        x.mul_(q[..., :, None]).mul_((-q)[..., None, :])
    x.div_(r[..., :, None] + r[..., None, :])  # (√a - √b)/(a - b) = 1/(√a + √b)
    if k:
        strip = _divided_differences(lam[..., :k, None], lam[..., None, :], p, eps, trunc)
        x[..., :k, :] = strip * rows
        x[..., :, :k] = strip.mT * cols
    return x


def _rotate(v1: torch.Tensor, m: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """v1 m v2ᵀ, written into m's buffer (m is the caller's temporary)."""
    return torch.matmul(v1 @ m, v2.mT, out=m)


def _sym(s: torch.Tensor) -> torch.Tensor:
    return 0.5 * (s + s.mT)


def _eigh(s: torch.Tensor):
    """Eigendecomposition of a symmetric matrix from its lower triangle (LAPACK's convention): the callers
    pass matrices symmetric by construction (Gram matrices, whose distance expansion is exactly symmetric,
    or an explicit _sym), so no symmetrising pass is spent."""
    return torch.linalg.eigh(s)


class _TracePow(torch.autograd.Function):
    """tr g_p(S) for symmetric S; gradient g_p'(S) (exact for any eigenvalue multiplicity).

    rel: None for the absolute threshold eps (trace-1 matrices); a number r for the threshold
    r · λ_max(S) relative to the matrix's own scale (the mirrored sandwich), held constant in the gradient."""

    @staticmethod
    def forward(ctx, s, p, eps, rel=None):
        lam, v = _eigh(s)
        if rel is not None:
            eps = (rel * lam[..., -1:]).clamp_min(torch.finfo(lam.dtype).tiny)
        g, dg = _g(lam, p, eps)
        ctx.save_for_backward(v, dg)
        return g.sum(-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        v, dg = ctx.saved_tensors
        gs = (v * (dg * grad[..., None])[..., None, :]) @ v.mT
        return gs, None, None, None


class _MatPow(torch.autograd.Function):
    """g_p(S) = V diag(g_p(λ)) Vᵀ with the Daleckii–Krein backward V (Γ ∘ Vᵀ G V) Vᵀ."""

    @staticmethod
    def forward(ctx, s, p, eps):
        lam, v = _eigh(s)
        g, _ = _g(lam, p, eps)
        ctx.save_for_backward(lam, v)
        ctx.p, ctx.eps = p, eps
        return (v * g[..., None, :]) @ v.mT

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        lam, v = ctx.saved_tensors
        inner = v.mT @ _sym(grad) @ v
        return _rotate(v, _loewner_times(lam, ctx.p, ctx.eps, False, inner), v), None, None


class _BilinearTrace(torch.autograd.Function):
    """T = tr(g_p1(S1) B g_p2(S2) Bᵀ) = Σ_ij a_i b_j W_ij², W = V1ᵀ B V2  (B = identity when None), of the
    scaled inputs S1 = f1·s1, B = fb·b, S2 = f2·s2: the scalars fold into eigenvalues and weight vectors,
    so that Gram matrices need no division pass (nor its backward)."""

    @staticmethod
    def forward(ctx, s1, b, s2, p1, p2, eps, trunc, f1=1.0, fb=1.0, f2=1.0):
        lam1, v1 = _eigh(s1)
        lam2, v2 = _eigh(s2)
        lam1, lam2 = lam1.mul_(f1), lam2.mul_(f2)
        w = v1.mT @ v2 if b is None else v1.mT @ b @ v2
        ga, _ = _g(lam1, p1, eps, trunc)
        gb, _ = _g(lam2, p2, eps, trunc)
        t = (ga * ((w * w) @ gb[..., None])[..., 0]).sum(-1)
        if b is not None and fb != 1.0:
            t = t.mul_(fb * fb)
        ctx.save_for_backward(lam1, v1, lam2, v2, w, ga, gb)
        ctx.p1, ctx.p2, ctx.eps, ctx.trunc, ctx.has_b = p1, p2, eps, trunc, b is not None
        ctx.f1, ctx.f2, ctx.fb2 = f1, f2, (fb * fb if b is not None else 1.0)
        return t

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        lam1, v1, lam2, v2, w, ga, gb = ctx.saved_tensors
        c = grad[..., None] * ctx.fb2
        need1, need_b, need2 = ctx.needs_input_grad[:3]  # e.g. target samples carry no gradient
        need_b = need_b and ctx.has_b
        gs1 = gs2 = gb_ = None
        if need1 or need_b:  # the gradient and S1's factor folded into the columns of W
            wg = w * (c * (ctx.f1 if need1 else 1.0) * gb)[..., None, :]
        if need1:
            x1 = wg @ w.mT  # V1ᵀ (B g(S2) Bᵀ) V1 · grad · f1
            gs1 = _rotate(v1, _loewner_times(lam1, ctx.p1, ctx.eps, ctx.trunc, x1), v1)
        if need2:
            x2 = (w.mT * (c * ctx.f2 * ga)[..., None, :]) @ w  # V2ᵀ (Bᵀ g(S1) B) V2 · grad · f2
            gs2 = _rotate(v2, _loewner_times(lam2, ctx.p2, ctx.eps, ctx.trunc, x2), v2)
        if need_b:  # 2 fb² V1 diag(a) W diag(b) V2ᵀ · grad, with fb² in c and f1 taken back out
            gb_ = _rotate(v1, wg.mul_((2.0 / (ctx.f1 if need1 else 1.0) * ga)[..., :, None]), v2)
        return gs1, gb_, gs2, None, None, None, None, None, None, None


class _TraceSandwichPow(torch.autograd.Function):
    """T = tr(F B g_p(S) Bᵀ) for PSD F (n1×n1), B (n1×n2, identity when None), symmetric S (n2×n2).

    Evaluated as Σ_j g_p(λ_j) max(u_jᵀ F u_j, 0), u_j = B v_j: a sum of non-negative terms, so a negative
    power of an ill-conditioned S cannot make it cancel to ≤ 0 (the element-wise Σ (BᵀFB)∘g_p(S) can).
    Backward: B g(S) Bᵀ for F, 2 F B g(S) for B, Daleckii–Krein for S."""

    @staticmethod
    def forward(ctx, f, b, s, p, eps, trunc):
        lam, v = _eigh(s)
        g, _ = _g(lam, p, eps, trunc)
        bv = v if b is None else b @ v
        fbv = _sym(f) @ bv
        t = (g * (bv * fbv).sum(-2).clamp_min(0.0)).sum(-1)
        ctx.save_for_backward(lam, v, bv, fbv, g)
        ctx.p, ctx.eps, ctx.trunc, ctx.has_b = p, eps, trunc, b is not None
        return t

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        lam, v, bv, fbv, g = ctx.saved_tensors
        cg = (grad[..., None] * g)[..., None, :]
        need_f, need_b, need_s = ctx.needs_input_grad[:3]
        gf = gb = gs = None
        if need_f:
            gf = (bv * cg) @ bv.mT
        if need_s:
            inner = _sym(bv.mT @ fbv).mul_(grad[..., None, None])
            gs = _rotate(v, _loewner_times(lam, ctx.p, ctx.eps, ctx.trunc, inner), v)
        if ctx.has_b and need_b:
            gb = (2.0 * fbv * cg) @ v.mT
        return gf, gb, gs, None, None, None


def _is_int(a: float) -> bool:
    return float(a).is_integer()


def _int_power(s: torch.Tensor, k: int) -> torch.Tensor:
    """S^k (k ≥ 1) by binary exponentiation."""
    result, base = None, s
    while k:
        if k & 1:
            result = base if result is None else result @ base
        k >>= 1
        if k:
            base = base @ base
    return result


def _trace_int_power(s: torch.Tensor, k: int) -> torch.Tensor:
    """tr(S^k) for symmetric S, k ≥ 1: tr(P Q) = Σ P∘Q with P = S^⌊k/2⌋, Q = S^⌈k/2⌉ (k = 2: ‖S‖_F²)."""
    if k == 1:
        return torch.diagonal(s, dim1=-2, dim2=-1).sum(-1)
    h = k // 2
    p = _int_power(s, h)
    q = p if k % 2 == 0 else p @ s
    return (p * q).sum((-2, -1))


def _tr_power(s: torch.Tensor, p: float, eps: float, fast: bool, rel: Optional[float] = None) -> torch.Tensor:
    """tr g_p(S) for symmetric PSD S (threshold: eps, or rel · λ_max(S) when rel is given)."""
    if fast and _is_int(p) and p >= 1:
        return _trace_int_power(s, int(p))
    return _TracePow.apply(s, p, eps, rel)


def _trace(s):
    return torch.diagonal(s, dim1=-2, dim2=-1).sum(-1)
