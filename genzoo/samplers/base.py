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

The codes a sampler sees are what the model's `decode` takes (encoder outputs; a VAE's posterior means by
default), so `model.decode(sampler.sample(n))` are new images.
"""

from __future__ import annotations

import torch
from torch import nn


class CodeSampler(nn.Module):
    """A density over codes, fitted after training: subclasses implement fit, sample and log_prob."""

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
