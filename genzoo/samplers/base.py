"""The sampler contract: a distribution over a trained model's codes, fitted on them after training.

A sampler is an nn.Module whose options are its constructor's keyword arguments (checked like every recipe key)
and whose fitted state is its tensors (buffers and parameters, saved as safetensors), so that it rebuilds from
config.json + sampler.safetensors without running code from a file. `dim` (the code width) is supplied by genzoo.

    @SAMPLERS.register("mine")
    class Mine(CodeSampler):
        def __init__(self, dim: int, width: PositiveInt = 4): ...
        def fit(self, codes, held_out, generator) -> dict: ...   # returns what to record about the fit
        def sample(self, n, generator=None) -> Tensor: ...        # (n, dim) float32 codes, on the CPU
        def log_prob(self, z) -> Tensor: ...                      # (n,) float64 log-density
        has_density = True   # set False where log_prob has no closed form (then it is never called)

The codes a sampler sees are what the model's `decode` takes (encoder outputs; a VAE's posterior means by
default), so `model.decode(sampler.sample(n))` are new images.
"""

from __future__ import annotations

import torch
from torch import nn


class CodeSampler(nn.Module):
    """A density over codes, fitted after training: subclasses implement fit, sample and log_prob."""

    has_density = True  # False: log_prob has no closed form (the arcsine law's orthant probabilities), so the fit
    # record holds no log-likelihood and the sampler's own fit() reports how well it fits held-out codes

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def fit(self, codes: torch.Tensor, held_out: torch.Tensor, generator: torch.Generator) -> dict:
        """Fit on float64 codes (n, dim); held_out codes may steer the fit (early stopping). Returns a record."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def standard_normal(n: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(n, dim, generator=generator, dtype=torch.float64)


def train_early_stopped(
    module, batch_loss, held_loss, n: int, generator, *, steps, batch_size, lr, eval_every, patience
) -> dict:
    """Adam on batch_loss(indices) over random batches of n codes; every eval_every steps held_loss() is computed,
    and the state of `module` with the lowest one is kept (the run stops after `patience` evaluations without a new
    best). Returns the record of the fitted samplers that train a network: steps run, best step, early stop."""
    import math

    opt = torch.optim.Adam(module.parameters(), lr=lr)
    best, best_step, best_state, waited, step = math.inf, 0, None, 0, 0
    module.train()
    for step in range(1, steps + 1):
        loss = batch_loss(torch.randint(0, n, (min(batch_size, n),), generator=generator))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                held = float(held_loss())
            if held < best:
                best, best_step, waited = held, step, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
    module.load_state_dict(best_state)
    module.eval()
    return {"steps_run": step, "best_step": best_step, "early_stopped": step < steps}
