from __future__ import annotations

from contextlib import contextmanager

import torch


class EMA:
    """Exponential moving average of a model's parameters, with a half-life counted in images (as ALAE)."""

    def __init__(self, model: torch.nn.Module, half_life_images: float):
        self.half_life = half_life_images
        self.names = [n for n, _ in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, images: int) -> None:
        weight = 1.0 - 0.5 ** (images / self.half_life)
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], weight)

    def state_dict(self) -> dict:
        return {f"ema.{n}": s for n, s in zip(self.names, self.shadow)}

    def load_state_dict(self, tensors: dict) -> None:
        with torch.no_grad():
            for n, s in zip(self.names, self.shadow):
                s.copy_(tensors[f"ema.{n}"])

    @contextmanager
    def applied(self):
        """Temporarily put the averaged weights into the model (for samples and export)."""
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in self.params], self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self.params], saved)
