"""Architectures. Each declares its optimisation phases; the one Trainer runs them."""

from genzoo.models.base import GenerativeAutoencoder, Phase
from genzoo.models import mlp_aae  # noqa: F401  (registers)
from genzoo.models import mlp_alae  # noqa: F401  (registers)
from genzoo.models import vae, lbae  # noqa: F401  (registers)
from genzoo.models import style_alae  # noqa: F401  (registers)

__all__ = ["GenerativeAutoencoder", "Phase"]
