"""Architectures. Each declares its optimisation phases; the one Trainer runs them."""

from genzoo.models import (  # noqa: F401  (registers)
    lbae,
    mlp_aae,  # noqa: F401  (registers)
    mlp_alae,  # noqa: F401  (registers)
    style_alae,  # noqa: F401  (registers)
    vae,
)
from genzoo.models.base import GenerativeAutoencoder, Phase

__all__ = ["GenerativeAutoencoder", "Phase"]
