from __future__ import annotations

import math

from genzoo.core.registry import PRIORS
from genzoo.priors.base import Prior


@PRIORS.register("gaussian")
class GaussianPrior(Prior):
    """Isotropic Gaussian N(mean, std^2 I) (the AAE paper's MNIST prior: dimension 8, std 5)."""

    has_log_prob = True

    def __init__(self, dim: int, std: float = 1.0, mean: float = 0.0):
        super().__init__(dim)
        if std <= 0:
            from genzoo.core.errors import GenzooError

            raise GenzooError(f"recipe key 'prior.std' must be positive, got {std}", "set prior.std > 0")
        self.std, self.mean = std, mean

    def sample(self, n, generator=None):
        return self.randn(n, self.dim, generator=generator) * self.std + self.mean

    def log_prob(self, z):
        return (-0.5 * ((z - self.mean) / self.std) ** 2 - math.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)
