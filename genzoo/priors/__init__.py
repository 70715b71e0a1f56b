"""Priors: distributions over codes, and (optionally) their own way of matching codes to them."""

from genzoo.priors import gaussian, mbrce, mixture  # noqa: F401  (registers)
from genzoo.priors.base import Prior

__all__ = ["Prior"]
