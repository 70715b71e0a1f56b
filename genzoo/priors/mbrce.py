from __future__ import annotations

from typing import Literal

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import PRIORS
from genzoo.priors.base import Prior
from genzoo.priors.mixture import circle_means, sample_mixture


@PRIORS.register("mbrce")
class MBRCEPrior(Prior):
    """Arbitrary target distribution matched by the matrix-based Renyi alpha-divergence (Sledge & Principe).

    `matching_loss(codes)` is the divergence between a batch of codes and an equal-sized batch drawn from the
    target; architectures use it in place of their own matching (the AAE's discriminator, the VAE's KL term).
    `divergence(x, y)` between any two code batches is what ALAE-style architectures use to push generated
    codes away from real ones and pull them back (docs/mbrce.md).

    Targets: `gaussian` N(0, std^2 I); `mixture` of `modes` Gaussians (std `mode_std`) with means at distance
    `radius` from the origin, on a circle in the first two coordinates (the `mixture` prior's distribution);
    `uniform` on the cube [-std, std]^dim; `sphere` uniform on the sphere of radius `radius`.
    """

    matches_codes = True

    def __init__(
        self,
        dim: int,
        target: Literal["gaussian", "mixture", "uniform", "sphere"] = "gaussian",
        std: float = 1.0,
        modes: int = 10,
        radius: float = 4.0,
        mode_std: float = 0.5,
        alpha: float = 0.5,
        kernel: Literal["gaussian", "laplacian"] = "gaussian",
        sigma: float | Literal["median"] = "median",
        measure: Literal["pooled", "bipartite", "mirrored"] = "pooled",
        mix: float = 0.0,
    ):
        super().__init__(dim)
        from genzoo.renyi import RenyiDivergence

        try:
            self.measure = RenyiDivergence(alpha=alpha, kernel=kernel, sigma=sigma, measure=measure, mix=mix)
        except ValueError as exc:
            raise GenzooError(f"prior 'mbrce': {exc}", "fix prior.alpha / prior.measure / prior.mix") from None
        if std <= 0 or radius <= 0 or mode_std <= 0 or modes < 1:
            raise GenzooError("prior 'mbrce' needs std, radius, mode_std > 0 and modes >= 1", "fix those prior keys")
        if target == "mixture" and dim < 2:
            raise GenzooError("prior.target 'mixture' needs latent_dim >= 2", "raise model.latent_dim")
        self.target, self.std, self.radius, self.mode_std = target, std, radius, mode_std
        self.register_buffer("means", circle_means(modes, dim, radius))

    def sample(self, n, generator=None):
        if self.target == "gaussian":
            return self.randn(n, self.dim, generator=generator) * self.std
        if self.target == "mixture":
            return sample_mixture(self, n, generator)
        if self.target == "uniform":
            u = torch.rand(n, self.dim, generator=generator).to(self.means.device)
            return (2 * u - 1) * self.std
        z = self.randn(n, self.dim, generator=generator)
        return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12) * self.radius

    def divergence(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.measure(x, y)

    def matching_loss(self, codes):
        return self.measure(codes, self.sample(codes.shape[0]).to(codes.dtype))
