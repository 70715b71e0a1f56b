"""The estimators: Rényi entropy, joint entropy and mutual information; the bipartite, mirrored and pooled
divergences, ``divergence`` (their dispatch) and ``cross_entropy``.

*Pooled formulation without (n_x+n_y)² eigendecompositions.*  With Φ a feature map (ΦΦᵀ = K) the
operators are C_X = Φ_Xᵀ Φ_X / n_x and C_Y = Φ_Yᵀ Φ_Y / n_y, and K^½ D_X K^½ is unitarily similar to C_X.
If K_XX/n_x = U diag(λ) Uᵀ then C_X^γ = Φ_Xᵀ U diag(λ^(γ-1)) Uᵀ Φ_X / n_x, and since Φ_X Φ_Yᵀ = K_XY,

    tr(C_X^α C_Y^(1-α)) = Σ_ij λ_i^(α-1) μ_j^(-α) (Uᵀ B W)_ij²,   B = K_XY / √(n_x n_y),

where K_YY/n_y = W diag(μ) Wᵀ.  So the estimator needs one n_x×n_x and one n_y×n_y eigendecomposition
(each ~6-8x cheaper than the (n_x+n_y)² one of the literal formula, which would also need K^½) plus two
matrix products.  The n structural zero eigenvalues of K^½ D_X K^½ never appear.  Each term equals
λ_i^α μ_j^(1-α) cos²(v_i, w_j) of unit feature-space eigenvectors, so it is bounded even where λ^(α-1)
or μ^(-α) is large.  An eigenvalue of K_XX/n_x (or of the Y-side matrix) that is (numerically) zero is
not a direction of the operator at all (Φᵀu = 0), so in this formula the negative powers use
pseudo-inverse semantics: eigenvalues below ``eps`` are dropped, with a C¹ smoothstep between eps and
2 eps (clamping them instead multiplies round-off in W by eps^(-α): measured, the divergence of a sample
with itself came out as 15 instead of 0 at α = 2, mix = 0.25).  The dropped terms are bounded by
~eps^min(α,1-α) (α < 1) or ~eps^(2-α) (mix, 1 < α < 2).

*α ≥ 1 for the pooled measure.*  C_X and C_Y have different supports (rank n_x and n_y inside an
(n_x+n_y)-dimensional span) so tr(C_X^α C_Y^(1-α)) is infinite for α ≥ 1: only an eigenvalue clamp
would set its value.  ``pooled_divergence`` therefore raises for α ≥ 1 unless ``mix > 0``, which replaces
C_Y by (1-mix) C_Y + mix C_Z, C_Z = Φᵀ Φ / (n_x+n_y) the covariance of the pooled sample.  C_Z
dominates C_X (C_X ≤ (n_x+n_y)/n_x · C_Z), so the divergence is finite, bounded by
log((n_x+n_y)/(mix n_x)) for 1 < α ≤ 2, and still 0 for identical samples; it is continuous in mix
(→ the plain estimator as mix → 0 for α < 1).  Computationally (1-mix) C_Y + mix C_Z = Φᵀ diag(q) Φ with
weights q on all rows: the same formula with an (n_x+n_y)² eigendecomposition for the Y side.
Measured limitations, tested: at α = 2 the mixed value is exactly log((n_x+n_y)/(mix n_x)) for any data
whose pooled Gram matrix is invertible (tr(C_X² C_Y'^-1) = Σ_i p_i²/q_i), i.e. uninformative; for α > 2
it is dominated by the smallest eigenvalues of the Y side (the Petz quantity is not controlled by
domination there) and is not recommended.  Use 1 < α < 2 with mix, or α < 1 (α = 0.5 separated same- from
shifted/rescaled distributions best in our checks, n = 128, d = 8).

*The paired (published) measures only see each sample's own Gram matrix*, so they are invariant to any
isometry applied to y alone (with a fixed σ a translation of y leaves them unchanged); they also depend on
the row pairing (pitfall 4).  The pooled measure sees both.

*Fast paths* (``fast_path=True``, the default; ``fast_path=False`` forces the eigendecomposition path,
same values to ~1e-12): integer α computes tr(A^α) with matrix products and no eigendecomposition
(α = 2: ‖A‖_F², no product at all) for the entropies, joint entropy, mutual information and the mirrored
outer power; the mixed pooled one needs only the Y side's eigendecomposition (S_X^(α-1) by products), as
Σ_j g(μ_j) u_jᵀ F u_j, a sum of non-negative terms.  The bipartite divergence has no fast route: at integer α
a Cholesky factor of κ2 + εI (its shift biased the value by ~(α-1)ε/μ_min, 4e-8 to 6e-5 relative on ordinary
batches) and κ1^α by products (round-off in κ2's near-null space times ε^(1-α)) were both measured worse than
the eigenvector form.  Bipartite/pooled with non-integer α use one fused custom function: two
eigendecompositions, W = V1ᵀ B V2, value Σ_ij a_i b_j W_ij², a 5-matmul backward.

*A sample against itself*: every divergence is 0 where y is x (compared element by element, per batch entry),
without computing it: the formulas are 0 there, but on ill-conditioned samples (1-D points, repeated rows)
their floating-point value is round-off times ε^(1-α), or raised to α < 1, and had reached 1e-3 to 14.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch

from .checks import (
    _F64,
    DEFAULT_EPS,
    Sigma,
    _broadcast_pair,
    _check_alpha,
    _check_eps,
    _check_kernel,
    _check_measure,
    _check_points,
    _check_pooled,
    _compute_dtype,
    _f32_ok,
    _out_dtype,
    _same_dim,
    _same_n,
)
from .kernels import _gram64, _gram_blocks, _normalize64, _resolve_sigma
from .spectral import _BilinearTrace, _int_power, _is_int, _MatPow, _sym, _tr_power, _trace, _TraceSandwichPow

# float32 compute, mixed pooled measure: the pseudo-inverse threshold of its (n_x+n_y)² Y side, in units of
# (n_x+n_y)·u (with eps = 1e-12 the round-off eigenvalues of that singular-ish matrix get μ^-α weights)
_F32_MIX_EPS = 0.01


# ----------------------------------------------------------------------------------------------------
# entropies
# ----------------------------------------------------------------------------------------------------
def _entropy_from(a: torch.Tensor, alpha: float, eps: float, fast: bool) -> torch.Tensor:
    return torch.log(_tr_power(a, alpha, eps, fast)) / (1.0 - alpha)


def renyi_entropy(
    x: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = 1.0,
    *,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Matrix-based Rényi α-entropy S_α(A) = 1/(1-α) log Σ λ_i^α of the normalised Gram matrix of x.

    Shape x.shape[:-2], in x's dtype.  0 for n identical points, log n for n far-apart points."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    _check_kernel(kernel)
    out = _out_dtype(x)
    x64 = _check_points(x, "x", _compute_dtype(precision, x))  # float32 measured fine for entropies
    a = _normalize64(_gram64(x64, None, kernel, _resolve_sigma(sigma, x64)))
    return _entropy_from(a, alpha, eps, fast_path).to(out)


def _pair_sigmas(sigma, x64, y64):
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise ValueError(f"sigma as a sequence must be (sigma_x, sigma_y) (got {len(sigma)} entries)")
        return _resolve_sigma(sigma[0], x64), _resolve_sigma(sigma[1], y64)
    return _resolve_sigma(sigma, x64), _resolve_sigma(sigma, y64)


def _joint_setup(x, y, kernel, sigma, what, precision):
    _check_kernel(kernel)
    dt = _compute_dtype(precision, x, y)
    x64, y64 = _check_points(x, "x", dt), _check_points(y, "y", dt)
    _same_n(x64, y64, what, "")
    x64, y64 = _broadcast_pair(x64, y64)
    sx, sy = _pair_sigmas(sigma, x64, y64)
    a = _normalize64(_gram64(x64, None, kernel, sx))
    b = _normalize64(_gram64(y64, None, kernel, sy))
    ab = a * b
    ab = ab / torch.diagonal(ab, dim1=-2, dim2=-1).sum(-1)[..., None, None]
    return a, b, ab


def joint_entropy(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Union[Sigma, Tuple[Sigma, Sigma]] = 1.0,
    *,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Joint entropy S_α(A∘B / tr(A∘B)) of paired samples x (n, d1) and y (n, d2).

    sigma applies to each variable ("median": each variable's own median), or pass (sigma_x, sigma_y)."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    out = _out_dtype(x)
    _, _, ab = _joint_setup(x, y, kernel, sigma, "joint_entropy", precision)
    return _entropy_from(ab, alpha, eps, fast_path).to(out)


def mutual_information(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Union[Sigma, Tuple[Sigma, Sigma]] = 1.0,
    *,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Matrix-based mutual information I_α = S_α(A) + S_α(B) - S_α(A∘B/tr(A∘B)) of paired samples."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    out = _out_dtype(x)
    a, b, ab = _joint_setup(x, y, kernel, sigma, "mutual_information", precision)
    f = fast_path
    mi = _entropy_from(a, alpha, eps, f) + _entropy_from(b, alpha, eps, f) - _entropy_from(ab, alpha, eps, f)
    return mi.to(out)


# ----------------------------------------------------------------------------------------------------
# divergences
# ----------------------------------------------------------------------------------------------------
def _paired_points(x, y, kernel, what, precision, f32_ok=True):
    _check_kernel(kernel)
    dt = _compute_dtype(precision, x, y, f32_ok=f32_ok)
    x64, y64 = _check_points(x, "x", dt), _check_points(y, "y", dt)
    _same_dim(x64, y64, what)
    _same_n(x64, y64, what, "; use pooled_divergence for samples of different sizes")
    return _broadcast_pair(x64, y64)


def _paired_k(x64, y64, kernel, sigma):
    """Unit-diagonal Gram matrices K1, K2 of x and y with one σ ("median": of the pooled sample); the
    normalised ones are κ = K / n, a factor the callers fold in where they can."""
    kxx, _, kyy = _gram_blocks(x64, y64, kernel, sigma, cross=False)
    return kxx, kyy


def _same_sample(x64: torch.Tensor, y64: torch.Tensor) -> Optional[torch.Tensor]:
    """Where y is x itself, as a mask over the batch; None where it cannot be (the shapes differ)."""
    if x64.shape != y64.shape:
        return None
    return (x64 == y64).flatten(-2).all(-1)


def _zero_where_same(x64: torch.Tensor, y64: torch.Tensor, compute) -> torch.Tensor:
    """compute() of a divergence, except 0 where y is x: every measure is exactly 0 there (tr(κ^α κ^(1-α)) = tr κ),
    but in floating point round-off in a Gram matrix's near-null space, times ε^(1-α) (α > 1) or raised to α < 1
    (the mirrored sandwich), can reach 1e-3 to 10 on ill-conditioned samples (1-D points, repeated rows).  The
    zero keeps the graph: D(x, x) is a minimum, so its gradient is 0."""
    same = _same_sample(x64, y64)
    if same is None or not bool(same.any()):
        return compute()
    zero = (x64 * 0.0).sum((-2, -1)) + (y64 * 0.0).sum((-2, -1))
    return zero if bool(same.all()) else torch.where(same, zero, compute())


def _bipartite64(k1, k2, alpha, eps, scale=None):
    """The bipartite divergence of κ1 = k1, κ2 = k2, or, with scale = 1/n, of κ = scale·K for unit-diagonal
    Gram matrices K (the factor folded into eigenvalues, no division pass; tr κ1 = 1).

    Always two eigendecompositions, integer α included (no fast path): the routes without one (κ1^α by
    products, or a Cholesky factor of κ2 + εI) were 1e-8 to 6e-5 relative off on ordinary batches and orders of
    magnitude off on ill-conditioned ones, where the eigenvector form Σ_ij λ_i^α g(μ_j) W_ij² stays at its
    round-off level (tests/renyi/test_renyi_sweep.py)."""
    unit = scale is not None
    scale = 1.0 if scale is None else scale
    t = _BilinearTrace.apply(k1, None, k2, alpha, 1.0 - alpha, eps, False, scale, 1.0, scale)
    log_t = torch.log(t) if unit else torch.log(t) - torch.log(_trace(k1))
    return log_t / (alpha - 1.0)


def bipartite_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = 1.0,
    *,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Published bipartite divergence C_α(κ1‖κ2) = 1/(α-1) log tr(κ1^α κ2^(1-α)) - 1/(α-1) log tr κ1.

    κ1, κ2: normalised Gram matrices of x and y (same n), same kernel and σ ("median": pooled median).
    Row-paired: permuting the rows of y alone changes the value (docs/mbrce.md)."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    out = _out_dtype(x)
    x64, y64 = _paired_points(x, y, kernel, "bipartite_divergence", precision, _f32_ok("bipartite", alpha))

    def compute():
        k1, k2 = _paired_k(x64, y64, kernel, sigma)
        return _bipartite64(k1, k2, alpha, eps, 1.0 / k1.shape[-1])

    return _zero_where_same(x64, y64, compute).to(out)


def _mirrored64(k1, k2, alpha, eps, fast):
    beta = (1.0 - alpha) / (2.0 * alpha)
    n = k1.shape[-1]
    p = _MatPow.apply(k2, beta, eps)
    m = _sym(p @ k1 @ p)
    # M is not trace-1 (its scale is about λ_max(κ)^(1/α)): its threshold is relative, at its round-off
    # level n·u·λ_max(M) for the default eps, and scaled with eps when the caller raises it
    rel = n * torch.finfo(m.dtype).eps * (eps / DEFAULT_EPS)
    return (torch.log(_tr_power(m, alpha, eps, fast, rel)) - torch.log(_trace(k1))) / (alpha - 1.0)


def mirrored_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = 1.0,
    *,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Published mirrored (sandwiched) divergence
    C'_α = 1/(α-1) log tr((κ2^β κ1 κ2^β)^α) - 1/(α-1) log tr κ1, β = (1-α)/(2α), the matrix raised to α
    before the trace.  Same n for x and y; same kernel and σ for both."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    out = _out_dtype(x)
    x64, y64 = _paired_points(x, y, kernel, "mirrored_divergence", precision, False)

    def compute():
        k1, k2 = _paired_k(x64, y64, kernel, sigma)
        n = k1.shape[-1]
        return _mirrored64(k1 / n, k2 / n, alpha, eps, fast_path)

    return _zero_where_same(x64, y64, compute).to(out)


def _pooled64(kxx, kxy, kyy, alpha, mix, eps, fast):
    """The pooled divergence from the unit-diagonal Gram blocks of Z = [x; y]."""
    nx, ny = kxx.shape[-1], kyy.shape[-1]
    m = nx + ny
    # log tr(K^½ D_X K^½) = log(tr K_XX / n_x): the unit diagonal carries no gradient
    log_tr = torch.log(_trace(kxx.detach()) / nx)
    if mix == 0.0 and not (fast and _is_int(alpha)):  # the hot path: the 1/n factors fold into eigenvalues
        f = (1.0 / nx, 1.0 / math.sqrt(nx * ny), 1.0 / ny)
        t = _BilinearTrace.apply(kxx, kxy, kyy, alpha - 1.0, -alpha, eps, True, *f)
        return (torch.log(t) - log_tr) / (alpha - 1.0)
    sp = kxx / nx  # nonzero spectrum of K^½ D_X K^½
    if mix == 0.0:
        sq = kyy / ny
        b = kxy / math.sqrt(nx * ny)
    else:
        k = torch.cat([torch.cat([kxx, kxy], dim=-1), torch.cat([kxy.mT, kyy], dim=-1)], dim=-2)
        q = torch.full((m,), mix / m, dtype=k.dtype, device=k.device)
        q[nx:] += (1.0 - mix) / ny
        rq = q.sqrt()
        sq = k * (rq[:, None] * rq[None, :])  # an exactly symmetric product: eigh reads one triangle
        b = k[..., :nx, :] * (rq / math.sqrt(nx))[None, :]
    if mix and kxx.dtype != _F64:
        eps = max(eps, _F32_MIX_EPS * m * torch.finfo(kxx.dtype).eps)
    if fast and _is_int(alpha):  # α - 1 ≥ 1 is an integer power: products for the X side
        f = _int_power(sp, int(alpha) - 1)
        t = _TraceSandwichPow.apply(f, b, sq, -alpha, eps, True)
    else:
        t = _BilinearTrace.apply(sp, b, sq, alpha - 1.0, -alpha, eps, True)
    return (torch.log(t) - log_tr) / (alpha - 1.0)


def _pooled_setup(x, y, kernel, sigma, alpha, mix, precision):
    _check_kernel(kernel)
    mix = _check_pooled(alpha, mix)
    dt = _compute_dtype(precision, x, y, f32_ok=_f32_ok("pooled", alpha, mix))
    x64, y64 = _check_points(x, "x", dt), _check_points(y, "y", dt)
    _same_dim(x64, y64, "pooled_divergence")
    x64, y64 = _broadcast_pair(x64, y64)
    return x64, y64, mix


def pooled_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = 1.0,
    *,
    mix: float = 0.0,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Order-invariant divergence over the pooled Gram matrix of Z = [x; y] (docs/mbrce.md):

        1/(α-1) log tr((K^½ D_X K^½)^α (K^½ D_Y' K^½)^(1-α)) - 1/(α-1) log tr(K^½ D_X K^½)

    with D_X = diag(1/n_x on x rows) and D_Y' = (1-mix) D_Y + mix I/(n_x+n_y).  x and y may have different
    numbers of rows.  α < 1 with mix = 0 is the plain estimator; α >= 1 requires mix > 0 (otherwise the
    value is infinite: the supports differ), see the module docstring.  Zero for a sample against itself
    (for any mix).  Computed without any (n_x+n_y)² eigendecomposition when mix = 0."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    out = _out_dtype(x)
    x64, y64, mix = _pooled_setup(x, y, kernel, sigma, alpha, mix, precision)

    def compute():
        return _pooled64(*_gram_blocks(x64, y64, kernel, sigma), alpha, mix, eps, fast_path)

    return _zero_where_same(x64, y64, compute).to(out)


def divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = 1.0,
    measure: str = "pooled",
    *,
    mix: float = 0.0,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Dispatch to pooled_divergence / bipartite_divergence / mirrored_divergence (mix: pooled only)."""
    measure = _check_measure(measure)
    if measure == "pooled":
        return pooled_divergence(
            x, y, alpha, kernel, sigma, mix=mix, eps=eps, fast_path=fast_path, precision=precision
        )
    if mix != 0.0:
        raise ValueError(f"mix applies to measure='pooled' only (got mix={mix} with measure={measure!r}); use mix=0")
    fn = bipartite_divergence if measure == "bipartite" else mirrored_divergence
    return fn(x, y, alpha, kernel, sigma, eps=eps, fast_path=fast_path, precision=precision)


def cross_entropy(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    kernel: str = "gaussian",
    sigma: Sigma = 1.0,
    measure: str = "pooled",
    *,
    mix: float = 0.0,
    eps: float = DEFAULT_EPS,
    fast_path: bool = True,
    precision: str = "auto",
) -> torch.Tensor:
    """Rényi α-cross-entropy in the Shannon sense: S_α(x) + divergence(x‖y) (docs/mbrce.md).

    One σ for both terms ("median": the median of the pooled sample).  For the pooled measure S_α(x) is
    the entropy of C_X, whose nonzero spectrum is that of x's normalised Gram matrix."""
    alpha, eps = _check_alpha(alpha), _check_eps(eps)
    measure = _check_measure(measure)
    _check_kernel(kernel)
    out = _out_dtype(x)
    dt = _compute_dtype(precision, x, y, f32_ok=_f32_ok(measure, alpha, mix))
    x64, y64 = _check_points(x, "x", dt), _check_points(y, "y", dt)
    _same_dim(x64, y64, "cross_entropy")
    x64, y64 = _broadcast_pair(x64, y64)
    nx = x64.shape[-2]
    if measure == "pooled":
        mix = _check_pooled(alpha, mix)
        kxx, kxy, kyy = _gram_blocks(x64, y64, kernel, sigma)
        k1 = kxx / nx
        div = _zero_where_same(x64, y64, lambda: _pooled64(kxx, kxy, kyy, alpha, mix, eps, fast_path))
    else:
        if mix != 0.0:
            raise ValueError(f"mix applies to measure='pooled' only (got mix={mix}); use mix=0")
        _same_n(x64, y64, f"the {measure} measure", "; use measure='pooled' for samples of different sizes")
        k1, k2 = _paired_k(x64, y64, kernel, sigma)
        if measure == "bipartite":
            div = _zero_where_same(x64, y64, lambda: _bipartite64(k1, k2, alpha, eps, 1.0 / nx))
            k1 = k1 / nx
        else:
            k1, k2 = k1 / nx, k2 / nx
            div = _zero_where_same(x64, y64, lambda: _mirrored64(k1, k2, alpha, eps, fast_path))
    ent = _entropy_from(k1, alpha, eps, fast_path)
    return (ent + div).to(out)
