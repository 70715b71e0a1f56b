from __future__ import annotations

import torch
from torch import nn

from genzoo.core.recorded import record_init


class Prior(nn.Module):
    """A distribution p(z) over `dim`-dimensional codes.

    Every prior can `sample`. A prior that also knows how to pull codes towards itself (the MBRCE prior) sets
    `matches_codes = True` and implements `matching_loss(codes)`; architectures then use it in place of their own
    matching (the AAE's discriminator, the VAE's KL term). A prior with a closed-form density sets `has_log_prob`.
    Being an nn.Module, a prior's parameters and buffers are saved with the model.
    """

    matches_codes = False
    has_log_prob = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        record_init(cls)  # constructor options kept: a prior built in Python saves like one from a recipe

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.register_buffer("_device_anchor", torch.zeros(()), persistent=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form density")

    def matching_loss(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not match codes itself")

    @property
    def device(self) -> torch.device:
        """Where the prior's buffers live (it moves with the model): where `sample` returns its codes."""
        return self._device_anchor.device

    def randn(self, *shape, generator=None) -> torch.Tensor:
        """Standard normal float32 draws on the prior's device; from a CPU generator, the same numbers on every
        device (drawn on the CPU, then moved), so that seeded samples do not depend on where the model runs."""
        anchor = self._device_anchor
        if generator is not None and generator.device != anchor.device:
            return torch.randn(*shape, generator=generator).to(anchor.device)
        return torch.randn(*shape, generator=generator, device=anchor.device, dtype=torch.float32)
