"""The `flow` sampler: a masked autoregressive flow (zuko's MAF) trained on the codes by maximum likelihood."""

from __future__ import annotations

import math

import torch

from genzoo.core.options import PositiveFloat, PositiveInt
from genzoo.core.registry import SAMPLERS
from genzoo.samplers.base import CodeSampler


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
        opt = torch.optim.Adam(self.flow.parameters(), lr=self.lr)
        best, best_step, best_state, waited, step = math.inf, 0, None, 0, 0
        self.train()
        for step in range(1, self.steps + 1):
            idx = torch.randint(0, len(codes), (min(self.batch_size, len(codes)),), generator=generator)
            loss = self._nll(codes[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % self.eval_every == 0 or step == self.steps:
                with torch.no_grad():
                    held = float(self._nll(held_out))
                if held < best:  # keep the best network seen on held-out codes
                    best, best_step, waited = held, step, 0
                    best_state = {k: v.detach().clone() for k, v in self.flow.state_dict().items()}
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
        self.flow.load_state_dict(best_state)
        self.eval()
        return {"steps_run": step, "best_step": best_step, "early_stopped": step < self.steps}

    @torch.no_grad()
    def sample(self, n, generator=None):
        eps = torch.randn(n, self.dim, generator=generator)
        return self.flow().transform.inv(eps) * self.scale + self.shift

    @torch.no_grad()
    def log_prob(self, z):
        z = z.float()
        return (self.flow().log_prob((z - self.shift) / self.scale) - self.scale.log().sum()).double()
