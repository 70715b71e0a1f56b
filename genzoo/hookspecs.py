"""Where plugins import their hook marker from: `from genzoo.hookspecs import hookimpl` (genzoo.core.hookspecs)."""

from genzoo.core.hookspecs import genzoo_register_components, hookimpl, hookspec

__all__ = ["hookimpl", "hookspec", "genzoo_register_components"]
