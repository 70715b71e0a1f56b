"""The divergence as a loss module: RenyiDivergence, its arguments validated at construction."""

from __future__ import annotations

import torch

from .checks import (
    DEFAULT_EPS,
    PRECISIONS,
    Sigma,
    _check_alpha,
    _check_eps,
    _check_kernel,
    _check_measure,
    _check_mix,
    _check_pooled,
)
from .estimators import divergence
from .kernels import _resolve_sigma


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
