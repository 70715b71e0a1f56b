"""Argument validation of the Rényi estimators, and the dtype they compute in.

*Precision* (``precision="auto"``): float64 on the CPU and for float64 points anywhere; on other devices
float32 for float32 points where its error against float64 was measured small (entropies, pooled without
mix, bipartite at α < 1) and, on CUDA, TF32 matmuls are off; float64 elsewhere;
"float64"/"float32" override (docs/mbrce.md).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Union

import torch

DEFAULT_EPS = 1e-12
KERNELS = ("gaussian", "laplacian")
MEASURES = ("pooled", "bipartite", "mirrored")

Sigma = Union[float, int, str, torch.Tensor]

_F64 = torch.float64


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


def _check_pooled(alpha: float, mix) -> float:
    mix = _check_mix(mix)
    if alpha >= 1.0 and mix == 0.0:
        raise ValueError(
            f"the pooled divergence is infinite for alpha >= 1 (got alpha={alpha}) because the covariance "
            "operators of x and y have different supports; use alpha < 1 (e.g. 0.5 or 0.99), or regularise "
            "with mix > 0 (e.g. mix=0.1), which mixes the pooled covariance into y's"
        )
    return mix
