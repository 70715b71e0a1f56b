"""genzoo-student-t: a multivariate Student-t prior, registered with genzoo as `student_t`.

An example of a genzoo plugin package: one Prior subclass and the `genzoo_register_components` hook, found by
genzoo through the entry point in this package's pyproject.toml.
"""

from __future__ import annotations

import math

import torch

from genzoo.core.options import PositiveFloat
from genzoo.hookspecs import hookimpl
from genzoo.priors.base import Prior

__version__ = "0.1.0"


class StudentTPrior(Prior):
    """Multivariate Student-t: heavy-tailed codes, loc + scale * x / sqrt(w / df) with x ~ N(0, I), w ~ chi2(df)."""

    has_log_prob = True  # a closed-form density: architectures that need one (a VAE's KL term) can use it

    # `dim` is injected by genzoo from model.latent_dim; every other argument is a recipe option under `prior:`,
    # checked by genzoo against these type hints and their bounds (unknown keys, wrong types and values out of
    # range are refused with a clear line: "recipe key 'prior.df' must be > 0, got -1.0").
    def __init__(self, dim: int, df: PositiveFloat = 3.0, scale: PositiveFloat = 1.0, loc: float = 0.0):
        super().__init__(dim)
        self.df, self.scale, self.loc = float(df), float(scale), float(loc)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # All randomness comes from `generator` (on its own device), so a seeded generator gives the same codes.
        device = generator.device if generator is not None else self.device
        x = torch.randn(n, self.dim, generator=generator, device=device)
        w = 2.0 * _standard_gamma(torch.full((n, 1), self.df / 2, device=device), generator)  # chi2(df)
        return (self.loc + self.scale * x * torch.rsqrt(w / self.df)).to(self.device)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        d, df = self.dim, self.df
        r2 = ((z - self.loc) / self.scale).pow(2).sum(-1)
        const = (
            math.lgamma((df + d) / 2) - math.lgamma(df / 2) - d / 2 * math.log(df * math.pi) - d * math.log(self.scale)
        )
        return const - (df + d) / 2 * torch.log1p(r2 / df)


def _standard_gamma(alpha: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(alpha, 1) draws with an explicit generator (torch's own gamma sampler takes none).

    Marsaglia and Tsang (2000) for alpha >= 1; alpha < 1 uses Gamma(alpha + 1) * U^(1/alpha).
    """
    boost = alpha < 1
    a = torch.where(boost, alpha + 1, alpha)
    d = a - 1 / 3
    c = 1 / torch.sqrt(9 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while bool(todo.any()):
        x = torch.randn(a.shape, generator=generator, device=a.device)
        u = torch.rand(a.shape, generator=generator, device=a.device)
        v = (1 + c * x) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-30)))
        take = todo & ok
        out = torch.where(take, d * v, out)
        todo = todo & ~ok
    u = torch.rand(a.shape, generator=generator, device=a.device)
    return torch.where(boost, out * u.pow(1 / alpha), out)


@hookimpl
def genzoo_register_components(priors):
    """Called once by genzoo at start-up; ask only for the registries you use (priors, models, datasets, metrics)."""
    priors.register("student_t", StudentTPrior)
