"""Fitted samplers: densities fitted to a trained model's codes after training (ex-post density estimation).

Importing this package registers the built-ins; genzoo.core.registry imports it with the other components."""

from genzoo.samplers import arcsine, fit, flow, gaussian, two_stage  # noqa: F401  (registration)
from genzoo.samplers.base import CodeSampler

__all__ = ["CodeSampler"]
