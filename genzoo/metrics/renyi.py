"""Matrix-based Rényi α-entropies and α-divergences (MBRCE), differentiable, in PyTorch.

This module imports only ``torch`` and the standard library; it can be copied out of genzoo and used
on its own.  Every function takes point clouds ``x`` of shape ``(n, d)`` or batched ``(..., n, d)``,
is differentiable with respect to the points, computes in float64 internally and casts the result back
to the input's dtype.  Logarithms are natural.

Definitions (see docs/mbrce.md; Sanchez Giraldo, Rao & Príncipe, arXiv 1211.2459; Sledge & Príncipe,
arXiv 2109.11737)
-------------------------------------------------------------------------------------------------------
* kernels: ``"gaussian"`` exp(-‖x-y‖² / (2σ²)) and ``"laplacian"`` exp(-‖x-y‖ / σ) (the kernel the
  reference notebook uses, which it calls Gaussian).  ``sigma="median"``: σ = median of the pairwise
  Euclidean distances of the (pooled) sample, detached (no gradient flows through σ).
* normalised Gram matrix A_ij = K_ij / (n √(K_ii K_jj)), tr A = 1.
* entropy S_α(A) = 1/(1-α) log Σ λ_i^α;  joint entropy S_α(A∘B / tr(A∘B));  I = S(A) + S(B) - S(A,B).
* bipartite divergence C_α(κ1‖κ2) = 1/(α-1) log tr(κ1^α κ2^(1-α)) - 1/(α-1) log tr κ1 (rows of x and y
  are paired, so it depends on their order: docs/mbrce.md).
* mirrored (sandwiched) divergence C'_α = 1/(α-1) log tr((κ2^β κ1 κ2^β)^α) - 1/(α-1) log tr κ1,
  β = (1-α)/(2α); the matrix is raised to α *before* the trace (pitfall 2).
* pooled divergence (docs/mbrce.md): with Z = [x; y], K its unit-diagonal Gram matrix and
  D_X = diag(1/n_x on the x rows), D_Y likewise,
  D_α = 1/(α-1) log tr((K^½ D_X K^½)^α (K^½ D_Y K^½)^(1-α)) - 1/(α-1) log tr(K^½ D_X K^½).
  It is invariant to the order of the rows of x and of y, and n_x ≠ n_y is allowed.
* cross-entropy = S_α(x) + divergence (pitfall 3: the "C_α" of the notebook is a divergence; it is 0 for a
  sample against itself).  No ``abs()`` around the logs (pitfall 1).

Design
------
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
``torch.autograd.Function``s (first-order only: no double backward).  Distances use the polynomial
expansion ‖x‖² + ‖y‖² - 2x·y (no cdist backward) and the Laplacian kernel's √ has a zero subgradient at
(round-off level) zero distance.

*Eigenvalue threshold ``eps``* (absolute, default 1e-12, for the matrices whose powers are taken, which have
trace 1, except the mirrored M = κ2^β κ1 κ2^β: M's scale is ~λ_max(κ)^(1/α), so its threshold is relative,
n·u·λ_max(M)·(eps/1e-12), its round-off level at the default eps; an absolute 1e-12 cut genuine eigenvalues
of M, 1.8e-4 of error at α = 0.3 against 50-digit arithmetic).  The eigenvalue function g_p(λ) used for λ^p is
  - p < 0:      max(λ, ε)^p (the clamp; zero derivative below ε) for the bipartite/mirrored measures, as in
                the published estimators; pseudo-inverse (dropped below ε, see above) in the pooled one,
  - 0 < p < 1:  λ^p for λ ≥ ε, and below ε the C¹ quadratic ε^p ((2-p) t + (p-1) t²), t = max(λ,0)/ε,
                so zero eigenvalues contribute exactly 0 (the entropy of n identical points is 0, not
                ~n ε^p) and the derivative is bounded by max(p, 2-p) ε^(p-1) instead of diverging,
  - p ≥ 1:      max(λ, 0)^p (smooth; no clamp needed).
For well-conditioned matrices (all eigenvalues ≥ 2ε) this is exactly λ^p.  Raise ``eps`` (e.g. 1e-8) to
tame gradients of α < 1 estimators on rank-deficient batches; negative powers of ill-conditioned Gram
matrices (bipartite/mirrored with α > 1) are dominated by the clamp, as in the reference.

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

*No work for inputs that need no gradient*: the Gram blocks K_XX, K_XY, K_YY are built block by block, so
a target sample without gradient (a prior draw, frozen real codes) has its block and the median bandwidth
outside the autograd graph, and the spectral functions skip its side.

*Few passes over n² memory* (at n = 256-1024 a pass over an n × n float64 matrix costs about as much as a
matrix product's share of it): the Gaussian blocks are one fused function (_GaussianBlocks: distances, median
and kernel in three buffers; a backward of one product per block); the 1/n of κ = K/n folds into eigenvalues,
weight vectors; eigh reads the lower triangle of matrices symmetric by construction; at
α = 0.5 the Loewner matrix is applied in place from its closed form.

*Precision* (``precision="auto"``): float64 on the CPU and for float64 points anywhere; on other devices
float32 for float32 points where its error against float64 was measured small (entropies, pooled without
mix, bipartite at α < 1) and, on CUDA, TF32 matmuls are off; float64 elsewhere;
"float64"/"float32" override (docs/mbrce.md).

*Large samples*: the exact pooled measure costs an n_x² and an n_y² eigendecomposition (10,000 against
10,000 vectors of width 2048: five minutes and 6 GB on two cores); ``nystrom_divergence`` approximates it
with m landmarks (O(n m (d + m))), exact with every point as a landmark, an underestimate otherwise
(measured in docs/mbrce.md); ``lanczos_divergence`` keeps x's side exact and estimates y's by stochastic Lanczos
quadrature (no n_y² eigendecomposition, K_YY in memory), within about 1 % of the exact value where measured.
The median bandwidth of more than 4,096 points is computed over row blocks of the upper triangle, never the
full n² matrix; ``median_bandwidth(max_points=)`` subsamples.
"""

from __future__ import annotations

import functools
import math
from numbers import Real
from typing import Optional, Tuple, Union

import torch

__all__ = [
    "DEFAULT_EPS",
    "KERNELS",
    "MEASURES",
    "PRECISIONS",
    "gram_matrix",
    "median_bandwidth",
    "normalized_gram",
    "renyi_entropy",
    "joint_entropy",
    "mutual_information",
    "bipartite_divergence",
    "mirrored_divergence",
    "pooled_divergence",
    "nystrom_divergence",
    "lanczos_divergence",
    "divergence",
    "cross_entropy",
    "RenyiDivergence",
]

DEFAULT_EPS = 1e-12
KERNELS = ("gaussian", "laplacian")
MEASURES = ("pooled", "bipartite", "mirrored")

Sigma = Union[float, int, str, torch.Tensor]

_F64 = torch.float64
# relative gap below which two eigenvalues are "equal" for the non-power divided differences
_CLOSE = 1e-6
# float32 compute, mixed pooled measure: the pseudo-inverse threshold of its (n_x+n_y)² Y side, in units of
# (n_x+n_y)·u (with eps = 1e-12 the round-off eigenvalues of that singular-ish matrix get μ^-α weights)
_F32_MIX_EPS = 0.01


# ----------------------------------------------------------------------------------------------------
# argument validation
# ----------------------------------------------------------------------------------------------------
def _check_alpha(alpha) -> float:
    if isinstance(alpha, torch.Tensor):
        if alpha.numel() != 1:
            raise ValueError(f"alpha must be a single number (got a tensor of shape {tuple(alpha.shape)})")
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise ValueError(f"alpha must be a real number > 0 and != 1 (got {alpha!r})")
    a = float(alpha)
    if not math.isfinite(a) or a <= 0:
        raise ValueError(f"alpha must be > 0 and != 1 (got {a}); Rényi orders are positive, e.g. alpha=0.5 or alpha=2")
    if a == 1.0:
        raise ValueError(
            "alpha must be > 0 and != 1 (got 1.0): the 1/(1-alpha) factor is singular at the Shannon limit; "
            "use alpha=0.99 for a value near Shannon"
        )
    return a


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, Real) or not math.isfinite(float(eps)) or float(eps) <= 0:
        raise ValueError(f"eps must be a finite number > 0 (got {eps!r}); the default is {DEFAULT_EPS}")
    if float(eps) >= 1e-2:
        raise ValueError(
            f"eps={eps} is the eigenvalue clamp for trace-1 matrices and must be < 1e-2; use e.g. 1e-12 "
            "(default) or 1e-8 for smoother gradients"
        )
    return float(eps)


def _check_kernel(kernel) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS} (got {kernel!r})")
    return kernel


def _check_measure(measure) -> str:
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES} (got {measure!r})")
    return measure


def _check_mix(mix) -> float:
    if isinstance(mix, bool) or not isinstance(mix, Real) or not (0.0 <= float(mix) <= 1.0):
        raise ValueError(f"mix must be a number in [0, 1] (got {mix!r}); e.g. mix=0.1 to allow alpha >= 1")
    return float(mix)


def _check_points(x, name: str, dtype: torch.dtype = _F64) -> torch.Tensor:
    """Validate a point cloud and return it in the compute dtype (float64 unless the precision policy says
    otherwise; autograd-connected)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (n, d) or (..., n, d) (got {type(x).__name__})")
    if x.is_complex():
        raise ValueError(f"{name} must be real-valued (got dtype {x.dtype})")
    if x.dim() < 2:
        raise ValueError(
            f"{name} must have shape (n, d) or (..., n, d) (got shape {tuple(x.shape)}); "
            f"for n scalar samples pass {name}.unsqueeze(-1)"
        )
    if x.shape[-2] < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} needs at least one point and one dimension (got shape {tuple(x.shape)})")
    bad = 0
    if x.is_floating_point() and x.numel():
        with torch.no_grad():  # one pass: NaN and ±Inf propagate into the range, a finite range has none
            lo, hi = torch.aminmax(x)
            if not math.isfinite(float(hi - lo)):
                bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or Inf); the estimators need finite points: "
            "check the upstream network for divergence (e.g. lower the learning rate) or filter the batch"
        )
    return x.to(dtype)


PRECISIONS = ("auto", "float64", "float32")


def _compute_dtype(precision, *tensors: torch.Tensor, f32_ok: bool = True) -> torch.dtype:
    """The dtype of the kernel and spectral work: "float64"; "float32"; "auto" = float64 on the CPU and for
    float64 points anywhere; on other devices (GPUs run float64 at 1/2-1/64 of float32's rate), for points
    in float32 or lower, float32 where its error against float64 was measured small (f32_ok: no negative
    power of a matrix with round-off-level eigenvalues, no mirrored sandwich; docs/mbrce.md, section 7) and,
    on CUDA, only while float32 matmuls are IEEE (TF32 off); float64 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} (got {precision!r})")
    if precision == "auto":
        ts = [t for t in tensors if isinstance(t, torch.Tensor)]
        kinds = {t.device.type for t in ts}
        if kinds <= {"cpu"}:
            return _F64
        if "mps" in kinds:  # no float64 there
            return torch.float32
        if any(t.dtype == _F64 for t in ts):
            return _F64
        if "cuda" in kinds and _tf32_matmuls():  # float32 error measured with IEEE matmuls only
            return _F64
        return torch.float32 if f32_ok else _F64
    return _F64 if precision == "float64" else torch.float32


def _tf32_matmuls() -> bool:
    """Whether CUDA float32 matmuls may round to TF32 (10-bit mantissa), e.g. set by genzoo's trainer: the
    squared-distance expansion and the spectral products would then lose most of float32's precision."""
    return bool(torch.backends.cuda.matmul.allow_tf32) or torch.get_float32_matmul_precision() != "highest"


def _f32_ok(measure: str, alpha: float, mix=0.0) -> bool:
    """Where "auto" may compute in float32 off the CPU: the pooled measure without mix, the bipartite one
    for α < 1; not the mirrored one (its sandwich squares the Gram matrix's condition number) nor negative
    clamped powers (bipartite α > 1, integer or not: 0.02 off at n = 256, d = 8; pooled with mix)."""
    if measure == "pooled":
        return not mix
    if measure == "bipartite":
        return alpha < 1
    return False


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


def _broadcast_pair(x: torch.Tensor, y: torch.Tensor, nx: str = "x", ny: str = "y"):
    if x.dim() == 2 and y.dim() == 2:  # unbatched: nothing to broadcast (and no shape arithmetic to pay for)
        return x, y
    try:
        batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the batch dimensions of {nx} {tuple(x.shape[:-2])} and {ny} {tuple(y.shape[:-2])} do not broadcast"
        ) from None
    return x.expand(*batch, *x.shape[-2:]), y.expand(*batch, *y.shape[-2:])


def _same_dim(x, y, what):
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{what} compares x and y in one kernel space, so they need the same number of columns "
            f"(got d={x.shape[-1]} and d={y.shape[-1]})"
        )


def _same_n(x, y, what, alternative):
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(
            f"{what} pairs the rows of x and y, so they need the same number of rows "
            f"(got {x.shape[-2]} and {y.shape[-2]}){alternative}"
        )


# ----------------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------
# spectral functions with stable derivatives
# ----------------------------------------------------------------------------------------------------
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


def _entropy_from(a: torch.Tensor, alpha: float, eps: float, fast: bool) -> torch.Tensor:
    return torch.log(_tr_power(a, alpha, eps, fast)) / (1.0 - alpha)


# ----------------------------------------------------------------------------------------------------
# entropies
# ----------------------------------------------------------------------------------------------------
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


def _trace(s):
    return torch.diagonal(s, dim1=-2, dim2=-1).sum(-1)


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
    round-off level (tests/test_renyi_sweep.py)."""
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


def _check_pooled(alpha: float, mix) -> float:
    mix = _check_mix(mix)
    if alpha >= 1.0 and mix == 0.0:
        raise ValueError(
            f"the pooled divergence is infinite for alpha >= 1 (got alpha={alpha}) because the covariance "
            "operators of x and y have different supports; use alpha < 1 (e.g. 0.5 or 0.99), or regularise "
            "with mix > 0 (e.g. mix=0.1), which mixes the pooled covariance into y's"
        )
    return mix


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


# ----------------------------------------------------------------------------------------------------
# large samples: Nyström approximation of the pooled measure
# ----------------------------------------------------------------------------------------------------
def _subsample(n: int, k: int, generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator)[:k]


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


# ----------------------------------------------------------------------------------------------------
# module
# ----------------------------------------------------------------------------------------------------
class RenyiDivergence(torch.nn.Module):
    """Matrix-based Rényi α-divergence as a loss: ``forward(x, y)`` returns divergence(x‖y).

    Defaults suit a training loss matching encoder codes x (n, d) to samples y of a target distribution:
    the order-invariant pooled measure, α = 0.5 (finite without regularisation, and symmetric in x and y
    for the pooled measure), a Gaussian kernel with the scale-free median bandwidth of the pooled batch
    (detached, so the encoder cannot lower the loss by inflating distances through σ).  Arguments are
    validated here, at construction.  The output has shape x.shape[:-2] (a scalar for one batch)."""

    def __init__(
        self,
        alpha: float = 0.5,
        kernel: str = "gaussian",
        sigma: Sigma = "median",
        measure: str = "pooled",
        eps: float = DEFAULT_EPS,
        mix: float = 0.0,
        precision: str = "auto",
    ):
        super().__init__()
        self.alpha = _check_alpha(alpha)
        self.kernel = _check_kernel(kernel)
        if isinstance(sigma, str) and sigma != "median":
            raise ValueError(f"sigma must be a positive number, a tensor or 'median' (got {sigma!r})")
        if not isinstance(sigma, (str, torch.Tensor)):
            _resolve_sigma(sigma, torch.zeros(1, 1))
        self.sigma = sigma
        self.measure = _check_measure(measure)
        self.eps = _check_eps(eps)
        self.mix = _check_mix(mix)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS} (got {precision!r})")
        self.precision = precision
        if self.measure == "pooled":
            _check_pooled(self.alpha, self.mix)
        if self.measure != "pooled" and self.mix != 0.0:
            raise ValueError(f"mix applies to measure='pooled' only (got measure={measure!r}); use mix=0")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return divergence(
            x,
            y,
            self.alpha,
            self.kernel,
            self.sigma,
            self.measure,
            mix=self.mix,
            eps=self.eps,
            precision=self.precision,
        )

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, kernel={self.kernel!r}, sigma={self.sigma!r}, measure={self.measure!r}, "
            f"eps={self.eps}, mix={self.mix}, precision={self.precision!r}"
        )
