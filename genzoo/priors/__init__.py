"""Priors: distributions over codes, and (optionally) their own way of matching codes to them."""

from genzoo.priors.base import Prior
from genzoo.priors import gaussian, mbrce  # noqa: F401  (registers)

__all__ = ["Prior"]
