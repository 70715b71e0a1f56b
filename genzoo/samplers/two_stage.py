"""The `two_stage` sampler: a second, small VAE fitted to the codes (Dai & Wipf 2019, "Diagnosing and enhancing
VAE models"), sampled by decoding N(0, I) draws of its own latent space."""

from __future__ import annotations

import math

import torch
from torch import nn

from genzoo.core.options import PositiveFloat, PositiveInt
from genzoo.core.registry import SAMPLERS
from genzoo.samplers.base import CodeSampler, train_early_stopped


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@SAMPLERS.register("two_stage")
class TwoStageSampler(CodeSampler):
    """A second VAE on the standardised codes with a learned output noise gamma (Dai & Wipf's second stage).

    New codes are its decoder's means at u ~ N(0, I). Its log_prob is an importance-weighted estimate (`iw_samples`
    draws of q(u|z), seeded): a lower bound of the density, so its held-out log-likelihood is not comparable with the
    exact ones of `gaussian`, `gmm` and `flow` except as a bound."""

    def __init__(
        self,
        dim: int,
        hidden: PositiveInt = 256,
        layers: PositiveInt = 2,
        steps: PositiveInt = 4000,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
        eval_every: PositiveInt = 100,
        patience: PositiveInt = 5,
        iw_samples: PositiveInt = 64,
    ):
        super().__init__(dim)
        self.steps, self.batch_size, self.lr = steps, batch_size, lr
        self.eval_every, self.patience, self.iw_samples = eval_every, patience, iw_samples
        with torch.random.fork_rng():  # the same initial networks for every fit: the fit's seed orders its batches
            torch.manual_seed(0)
            self.encoder = _mlp([dim, *[hidden] * layers, 2 * dim])
            self.decoder = _mlp([dim, *[hidden] * layers, dim])
        # gamma starts small: from gamma = 1 the second stage sits in the trivial optimum (decoder constant, KL 0)
        self.log_gamma = nn.Parameter(torch.tensor(math.log(0.1)))
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def _terms(self, x: torch.Tensor, noise: torch.Tensor):
        """(log p(x|u) + log p(u) - log q(u|x)) for u = mean + std * noise, noise (k, n, dim) -> (k, n)."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        std = torch.exp(0.5 * log_var)
        u = mean + std * noise
        gamma2 = torch.exp(2 * self.log_gamma)
        log_px = -0.5 * ((x - self.decoder(u)).square() / gamma2).sum(-1) - self.dim * (
            self.log_gamma + 0.5 * math.log(2 * math.pi)
        )
        log_pu = -0.5 * u.square().sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        log_qu = -0.5 * noise.square().sum(-1) - (0.5 * log_var).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_px + log_pu - log_qu

    def _elbo(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        noise = torch.randn(1, *x.shape, generator=generator)
        return self._terms(x, noise)[0].mean()

    def fit(self, codes, held_out, generator) -> dict:
        codes, held_out = codes.float(), held_out.float()
        self.shift.copy_(codes.mean(0))
        self.scale.copy_(codes.std(0).clamp_min(1e-6))
        x, xh = (codes - self.shift) / self.scale, (held_out - self.shift) / self.scale
        record = train_early_stopped(
            self,
            lambda idx: -self._elbo(x[idx], generator),
            lambda: -self._elbo(xh, torch.Generator().manual_seed(0)),  # the same draws at every evaluation
            len(x),
            generator,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            eval_every=self.eval_every,
            patience=self.patience,
        )
        return {
            **record,
            "gamma": float(self.log_gamma.detach().exp()),
            "log_prob": f"importance-weighted, {self.iw_samples} draws",
        }

    @torch.no_grad()
    def sample(self, n, generator=None):
        u = torch.randn(n, self.dim, generator=generator)
        return self.decoder(u) * self.scale + self.shift

    @torch.no_grad()
    def log_prob(self, z):
        x = (z.float() - self.shift) / self.scale
        noise = torch.randn(self.iw_samples, *x.shape, generator=torch.Generator().manual_seed(0))
        terms = self._terms(x, noise)
        log_px = torch.logsumexp(terms, dim=0) - math.log(self.iw_samples)
        return (log_px - self.scale.log().sum()).double()
