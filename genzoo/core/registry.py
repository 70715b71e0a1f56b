"""One Registry type for priors, models (architectures), datasets, metrics and samplers; plugin discovery.

Built-ins register with a decorator (timm's `@register_model`):

    @PRIORS.register("gaussian")
    class GaussianPrior(Prior): ...

A metric also declares what its numbers are (`MetricInfo`: direction, display name, unit, sample-based), which
the study reports read; with nothing declared, every number it returns is a result with no direction:

    @METRICS.register("fid", better="lower", display="FID", headline=True, sample_based=True)
    def fid(model, dataset, ...): ...

Third-party packages register through the pluggy hook `genzoo_register_components` (see genzoo.core.hookspecs),
found from the entry-point group `genzoo.plugins`. Installing the package is the only step. A plugin that fails
to import or to register only warns: it never breaks genzoo.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Mapping

from genzoo.core.errors import GenzooError, did_you_mean

ENTRY_POINT_GROUP = "genzoo.plugins"
_BUILTIN_MODULES = ("genzoo.priors", "genzoo.models", "genzoo.datasets", "genzoo.metrics", "genzoo.samplers")


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Callable[..., Any]
    source: str  # "genzoo" for built-ins, else the plugin's distribution name

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line (a summary wrapped over two lines stays whole)."""
        import inspect

        doc = inspect.cleandoc(self.obj.__doc__ or "")
        return " ".join(doc.split("\n\n", 1)[0].split())


class Registry:
    """Components of one kind, found by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._source = "genzoo"  # set while a plugin registers

    def register(self, name: str, obj: Callable | None = None):
        """Register `obj` under `name`; usable as a decorator when `obj` is omitted."""

        def add(o):
            if name in self._entries and self._entries[name].obj is not o:
                raise GenzooError(
                    f"{self.kind} '{name}' is registered twice (by {self._entries[name].source} and {self._source})",
                    "rename one of them",
                )
            self._entries[name] = Entry(name, o, self._source)
            return o

        return add(obj) if obj is not None else add

    def get(self, name: str) -> Callable:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        load_components()
        if name not in self._entries:
            raise GenzooError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}",
                f"known {self.kind}s: {', '.join(sorted(self._entries)) or 'none'} (`genzoo list` shows all)",
            )
        return self._entries[name]

    def names(self) -> list[str]:
        load_components()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        load_components()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: str) -> bool:
        load_components()
        return name in self._entries

    def description(self, name: str) -> str:
        """What `genzoo list` says of a component."""
        return self.entry(name).summary


@dataclass(frozen=True)
class MetricValue:
    """What one number of a metric's result is, as study reports and their statistics read it."""

    display: str | None = None  # the name reports print; None: `<metric>.<value>`
    better: Literal["higher", "lower"] | None = None  # None: no direction, so no arm is called better
    unit: str | None = None  # printed after differences in the conclusions, e.g. "dB"; None: unitless
    headline: bool = False  # the report's conclusions speak of it (of every compared value when none is)

    def __post_init__(self):
        if self.better not in ("higher", "lower", None):
            raise GenzooError(
                f"a metric value's better must be 'higher', 'lower' or None, got {self.better!r}",
                "write better='lower' for a distance such as FID",
            )


@dataclass(frozen=True)
class MetricInfo:
    """What a registered metric declares. `values` names the numbers of its result that are results; the others
    are bookkeeping (counts, options, interval ends) that reports leave out. Empty (a metric that declares
    nothing): every number it returns is a result, with no direction."""

    values: Mapping[str, MetricValue] = field(default_factory=dict)
    sample_based: bool = False  # scores generated samples (a fitted sampler changes it); leads the report's columns
    circular: bool = False  # scores each model against its own prior (prior_match): not comparable across models

    def value(self, name: str) -> MetricValue | None:
        """The facts of one returned number; None when it is bookkeeping."""
        if not self.values:
            return MetricValue()
        return self.values.get(name)


class MetricRegistry(Registry):
    """The metrics, each with its MetricInfo."""

    def __init__(self):
        super().__init__("metric")
        self._info: dict[str, MetricInfo] = {}

    def register(
        self,
        name: str,
        obj: Callable | None = None,
        *,
        values: Mapping[str, MetricValue] | None = None,
        sample_based: bool = False,
        circular: bool = False,
        **one_value,
    ):
        """Register a metric function. A metric whose result is the one number named like itself may describe it
        with `better`, `display`, `unit` and `headline` directly; a metric with several results names each in
        `values` ({value name: MetricValue(...)})."""
        unknown = set(one_value) - {"better", "display", "unit", "headline"}
        if unknown:
            raise GenzooError(
                f"metric '{name}' is registered with unknown facts {', '.join(sorted(unknown))}",
                "use better ('higher' or 'lower'), display, unit, headline, values, sample_based, circular",
            )
        if one_value and values is not None:
            raise GenzooError(
                f"metric '{name}' declares both values= and {', '.join(one_value)}=",
                f"move those into values={{'{name}': MetricValue(...)}}",
            )
        values = {name: MetricValue(**one_value)} if one_value else dict(values or {})
        info = MetricInfo(values, sample_based, circular)
        add = super().register(name)

        def add_with_info(o):
            add(o)  # refuses a name taken by another metric before its facts are recorded
            self._info[name] = info
            return o

        return add_with_info(obj) if obj is not None else add_with_info

    def info(self, name: str) -> MetricInfo:
        """The metric's declaration; an unknown name (a result of a plugin no longer installed) declares nothing."""
        load_components()
        return self._info.get(name, MetricInfo())

    def description(self, name: str) -> str:
        """The summary and which way each of its values is better, e.g. "... (fid: lower is better)"."""
        ways = [
            f"{value}: {facts.better} is better" for value, facts in self.info(name).values.items() if facts.better
        ]
        return super().description(name) + (f" ({'; '.join(ways)})" if ways else "")

    def value_info(self, key: str) -> MetricValue | None:
        """The facts of one result number `<metric>.<value>`, its display name filled in; None for bookkeeping."""
        metric, _, value = key.partition(".")
        facts = self.info(metric).value(value)
        return None if facts is None else replace(facts, display=facts.display or key)


PRIORS = Registry("prior")
MODELS = Registry("model")
DATASETS = Registry("dataset")
METRICS = MetricRegistry()
SAMPLERS = Registry("sampler")  # densities fitted to a trained model's codes (genzoo.samplers)
REGISTRIES = {"priors": PRIORS, "models": MODELS, "datasets": DATASETS, "metrics": METRICS, "samplers": SAMPLERS}
# What the evaluation loop passes a metric function itself; its other keyword arguments are the metric's options.
METRIC_INPUTS = ("model", "dataset", "limit", "splits")

_loaded = False


def load_components() -> None:
    """Import the built-in components, then every installed plugin (once per process)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    _load_plugins()


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    import pluggy

    from genzoo.core import hookspecs

    manager = pluggy.PluginManager("genzoo")
    manager.add_hookspecs(hookspecs)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist else ep.value
        try:
            manager.register(ep.load(), name=package)
        except Exception as exc:  # a broken plugin must never break the CLI
            warnings.warn(
                f"genzoo plugin '{package}' failed to import ({type(exc).__name__}: {exc}); it is ignored. "
                f"Fix it or `pip uninstall {package}`",
                stacklevel=2,
            )
    # Call each plugin on its own so that what it registers is attributed to it.
    for impl in manager.hook.genzoo_register_components.get_hookimpls():
        for registry in REGISTRIES.values():
            registry._source = impl.plugin_name
        try:
            impl.function(**{arg: REGISTRIES[arg] for arg in impl.argnames})
        except Exception as exc:
            warnings.warn(
                f"genzoo plugin '{impl.plugin_name}' failed to register its components "
                f"({type(exc).__name__}: {exc}); it is ignored",
                stacklevel=2,
            )
        finally:
            for registry in REGISTRIES.values():
                registry._source = "genzoo"


def resolve_section(registry: Registry, section, path: str, injected=()) -> dict:
    """Check a recipe section `{name: ..., **options}` against the named component's signature and fill its defaults.

    `injected` names the arguments genzoo supplies itself (a model's prior, a prior's dim): they are not options.
    The one path from a recipe section to a component: recipe validation, `build` and `create_model` all use it.
    """
    from genzoo.core.options import bind_options

    if not isinstance(section, dict) or "name" not in section:
        raise GenzooError(
            f"recipe key '{path}.name' is missing", f"name a {registry.kind}: {', '.join(registry.names())}"
        )
    name = section["name"]
    entry = registry.entry(name)
    options = {k: v for k, v in section.items() if k != "name"}
    return {"name": name, **bind_options(entry.obj, options, path, dict.fromkeys(injected))}


def build(registry: Registry, section: dict, path: str, **injected):
    """Build a component from a recipe section; returns (object, resolved section with every default filled in):
    the resolved section is what gets saved into the run folder and the model's config.json."""
    resolved = resolve_section(registry, section, path, injected)
    options = {k: v for k, v in resolved.items() if k != "name"}
    return registry.get(resolved["name"])(**options, **injected), resolved
