"""Where plugins import their hook marker from: `from genzoo.hookspecs import hookimpl` (genzoo.core.hookspecs),
and MetricValue, which a metric's several result values are declared with (genzoo.core.registry)."""

from genzoo.core.hookspecs import genzoo_register_components, hookimpl, hookspec
from genzoo.core.registry import MetricValue

__all__ = ["hookimpl", "hookspec", "genzoo_register_components", "MetricValue"]
