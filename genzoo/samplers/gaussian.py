"""The `gaussian` (one full-covariance Gaussian) and `gmm` (a Gaussian mixture, scikit-learn's EM) samplers."""

from __future__ import annotations

import math
from typing import Annotated

import annotated_types
import torch

from genzoo.core.options import PositiveInt
from genzoo.core.registry import SAMPLERS
from genzoo.samplers.base import CodeSampler, standard_normal

_F64 = torch.float64


def _mvn_log_prob(z: torch.Tensor, mean: torch.Tensor, scale_tril: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, L Lᵀ) for z (n, d) against k components: means (k, d), factors (k, d, d) -> (n, k)."""
    diff = z[:, None, :] - mean[None]  # (n, k, d)
    sol = torch.linalg.solve_triangular(scale_tril[None], diff[..., None], upper=False)[..., 0]
    half_log_det = torch.diagonal(scale_tril, dim1=-2, dim2=-1).log().sum(-1)
    return -0.5 * sol.square().sum(-1) - half_log_det - 0.5 * z.shape[1] * math.log(2 * math.pi)


@SAMPLERS.register("gaussian")
class GaussianSampler(CodeSampler):
    """One full-covariance Gaussian fitted to the codes (their mean and covariance)."""

    def __init__(self, dim: int, reg_covar: Annotated[float, annotated_types.Ge(0)] = 1e-6):
        super().__init__(dim)
        self.reg_covar = reg_covar
        self.register_buffer("mean", torch.zeros(dim, dtype=_F64))
        self.register_buffer("scale_tril", torch.eye(dim, dtype=_F64))

    def fit(self, codes, held_out, generator) -> dict:
        self.mean.copy_(codes.mean(0))
        cov = torch.cov(codes.T, correction=0).reshape(self.dim, self.dim)
        self.scale_tril.copy_(torch.linalg.cholesky(cov + self.reg_covar * torch.eye(self.dim, dtype=_F64)))
        return {}

    def sample(self, n, generator=None):
        return (self.mean + standard_normal(n, self.dim, generator) @ self.scale_tril.T).float()

    def log_prob(self, z):
        return _mvn_log_prob(z.to(_F64), self.mean[None], self.scale_tril[None])[:, 0]


@SAMPLERS.register("gmm")
class MixtureSampler(CodeSampler):
    """A Gaussian mixture with full covariances fitted by EM (scikit-learn's GaussianMixture, as the RAE code)."""

    def __init__(
        self,
        dim: int,
        components: PositiveInt = 10,
        reg_covar: Annotated[float, annotated_types.Ge(0)] = 1e-6,
        max_iter: PositiveInt = 100,
        n_init: PositiveInt = 1,
    ):
        super().__init__(dim)
        self.components, self.reg_covar, self.max_iter, self.n_init = components, reg_covar, max_iter, n_init
        self.register_buffer("weights", torch.full((components,), 1.0 / components, dtype=_F64))
        self.register_buffer("means", torch.zeros(components, dim, dtype=_F64))
        self.register_buffer("covariances", torch.eye(dim, dtype=_F64).repeat(components, 1, 1))
        self.register_buffer("scale_tril", torch.eye(dim, dtype=_F64).repeat(components, 1, 1))

    def fit(self, codes, held_out, generator) -> dict:
        from sklearn.mixture import GaussianMixture

        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        gm = GaussianMixture(
            self.components,
            covariance_type="full",
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            n_init=self.n_init,
            random_state=seed,
        ).fit(codes.numpy())
        self.weights.copy_(torch.from_numpy(gm.weights_))
        self.means.copy_(torch.from_numpy(gm.means_))
        self.covariances.copy_(torch.from_numpy(gm.covariances_))
        self.scale_tril.copy_(torch.linalg.cholesky(self.covariances))
        return {"em_iterations": int(gm.n_iter_), "converged": bool(gm.converged_), "sklearn_seed": seed}

    def sample(self, n, generator=None):
        which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = standard_normal(n, self.dim, generator)
        return (self.means[which] + (self.scale_tril[which] @ eps[..., None])[..., 0]).float()

    def log_prob(self, z):
        return torch.logsumexp(_mvn_log_prob(z.to(_F64), self.means, self.scale_tril) + self.weights.log(), dim=1)
