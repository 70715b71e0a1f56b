"""The `flow` sampler: a masked autoregressive flow (zuko's MAF) trained on the codes by maximum likelihood."""

from __future__ import annotations

import torch

from genzoo.core.options import PositiveFloat, PositiveInt
from genzoo.core.registry import SAMPLERS
from genzoo.samplers.base import CodeSampler, train_early_stopped


@SAMPLERS.register("flow")
class FlowSampler(CodeSampler):
    """A masked autoregressive flow (zuko's MAF) on standardised codes, early-stopped on held-out codes."""

    def __init__(
        self,
        dim: int,
        transforms: PositiveInt = 5,
        hidden: PositiveInt = 128,
        steps: PositiveInt = 4000,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
        eval_every: PositiveInt = 100,
        patience: PositiveInt = 5,
    ):
        super().__init__(dim)
        import zuko

        self.steps, self.batch_size, self.lr = steps, batch_size, lr
        self.eval_every, self.patience = eval_every, patience
        with torch.random.fork_rng():  # the same initial network for every fit: the fit's seed orders its batches
            torch.manual_seed(0)
            self.flow = zuko.flows.MAF(dim, transforms=transforms, hidden_features=(hidden, hidden))
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def _nll(self, z: torch.Tensor) -> torch.Tensor:
        return -self.flow().log_prob((z - self.shift) / self.scale).mean()

    def fit(self, codes, held_out, generator) -> dict:
        codes, held_out = codes.float(), held_out.float()
        self.shift.copy_(codes.mean(0))
        self.scale.copy_(codes.std(0).clamp_min(1e-6))
        record = train_early_stopped(
            self.flow,
            lambda idx: self._nll(codes[idx]),
            lambda: self._nll(held_out),
            len(codes),
            generator,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            eval_every=self.eval_every,
            patience=self.patience,
        )
        self.eval()
        return record

    @torch.no_grad()
    def sample(self, n, generator=None):
        eps = torch.randn(n, self.dim, generator=generator)
        return self.flow().transform.inv(eps) * self.scale + self.shift

    @torch.no_grad()
    def log_prob(self, z):
        z = z.float()
        return (self.flow().log_prob((z - self.shift) / self.scale) - self.scale.log().sum()).double()
