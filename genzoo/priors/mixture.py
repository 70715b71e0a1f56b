from __future__ import annotations

import math

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.options import PositiveFloat, PositiveInt
from genzoo.core.registry import PRIORS
from genzoo.priors.base import Prior


def circle_means(modes: int, dim: int, radius: float) -> torch.Tensor:
    """`modes` means at distance `radius` from the origin, evenly spaced on a circle in the first two coordinates
    (the AAE paper's 2-D mixture when dim = 2); the other coordinates are 0."""
    angles = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    means = torch.zeros(modes, dim)
    if dim >= 2:
        means[:, 0], means[:, 1] = radius * torch.cos(angles), radius * torch.sin(angles)
    return means


@PRIORS.register("mixture")
class MixturePrior(Prior):
    """An equal-weight mixture of `modes` Gaussians N(mean_k, mode_std^2 I), the means on a circle of radius `radius`
    in the first two coordinates: the same distribution as the `mbrce` prior's `mixture` target, with a density.

    It samples (for the AAE's discriminator) and has a log-density (for the VAE's Monte-Carlo KL), so a study can
    pair the mixture with every matching mechanism, not only with MBRCE.
    """

    has_log_prob = True

    def __init__(self, dim: int, modes: PositiveInt = 10, radius: PositiveFloat = 4.0, mode_std: PositiveFloat = 0.5):
        super().__init__(dim)
        if dim < 2:
            raise GenzooError(
                "prior 'mixture' needs latent_dim >= 2 (its modes lie on a circle)", "raise model.latent_dim"
            )
        self.mode_std = mode_std
        self.register_buffer("means", circle_means(modes, dim, radius))

    def sample(self, n, generator=None):
        return sample_mixture(self, n, generator)

    def log_prob(self, z):
        sq = (z.unsqueeze(-2) - self.means.to(z.dtype)).pow(2).sum(-1)  # (..., modes), exact (cdist's matmul is not)
        per_mode = -0.5 * sq / self.mode_std**2 - self.dim * (math.log(self.mode_std) + 0.5 * math.log(2 * math.pi))
        return torch.logsumexp(per_mode, dim=-1) - math.log(len(self.means))


def sample_mixture(prior: Prior, n: int, generator=None) -> torch.Tensor:
    """n draws from the mixture of `prior.means` with spread `prior.mode_std`: a mode index, then Gaussian noise."""
    device = generator.device if generator is not None else "cpu"  # a generator draws on its own device
    which = torch.randint(len(prior.means), (n,), generator=generator, device=device).to(prior.means.device)
    return prior.means[which] + prior.randn(n, prior.dim, generator=generator) * prior.mode_std
