"""What a component can do beyond its base class: one `typing.Protocol` per optional ability, checked here only.

A model, prior or dataset has an ability when it defines the Protocol's public members, with no registration and
no extra base class: a model that defines `style_mix(...)` can mix styles. Commands, recipes and the trainer ask
`can(component, Ability)`, or `require(...)`, which fails with one line naming the component and what it lacks
("model 'vae' cannot mix styles: it has no style slots"). This is the one place genzoo probes a component for a
member (tests/core/test_capabilities.py reads the package's source and fails on a probe anywhere else).

The Protocols are the contract a plugin author reads: signatures, and what genzoo does with each member.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

from genzoo.core.errors import GenzooError

# -- models -----------------------------------------------------------------------------------------------------


@runtime_checkable
class Grows(Protocol):
    """Trained at growing resolutions (`train.growth`, StyleALAE): the trainer calls `set_growth` as the schedule
    moves up `resolutions` (the image sizes it has layers for, smallest first)."""

    resolutions: list[int]

    def set_growth(self, resolution: int, blend: float = 1.0) -> None: ...


@runtime_checkable
class FitsBeforeExport(Protocol):
    """Fits something on its training data before each checkpoint and export, in eval mode, on the main process
    (LBAE: its `cov` code sampler). The fitted state must live in buffers so that it is saved and broadcast."""

    def prepare_export(self, train_dataset) -> None: ...


@runtime_checkable
class MapsPriorCodes(Protocol):
    """Decodes codes that a mapping network makes from prior draws (ALAE: z -> w): prior codes go through
    `code_from_prior` before `decode` wherever genzoo draws from the prior (sampling, interpolation, stats)."""

    def code_from_prior(self, z): ...


@runtime_checkable
class HasPosterior(Protocol):
    """An encoder with a distribution: `posterior(x)` -> (mean, log-variance), each (N, latent) (the VAEs).
    A fitted sampler can fit on one reparameterised draw per image (`codes="draw"`) instead of the mean."""

    def posterior(self, x): ...


@runtime_checkable
class DrawsCodePaths(Protocol):
    """Codes between two codes along its own path, where a straight line would leave the codes the decoder was
    trained on (LBAE's binary codes): `codes_between(c0, c1, t)` -> (k, latent) for codes c0, c1 (latent,) and
    fractions t (k,) in [0, 1], t = 0 giving c0 and t = 1 giving c1. Interpolation grids and FID of
    interpolations use it; other models interpolate on straight lines."""

    def codes_between(self, c0, c1, t): ...


@runtime_checkable
class EditsAttributes(Protocol):
    """Finds a code direction for a labelled attribute (`genzoo attribute`, LBAE): the mean code of the images with
    it minus that of those without, (latent,)."""

    def attribute_direction(self, dataset, attribute: int | None = None, limit: int | None = None): ...


@runtime_checkable
class MixesStyles(Protocol):
    """Has per-level style slots to swap between two images' codes (`genzoo stylemix`, StyleALAE)."""

    def style_mix(self, source_codes, destination_codes, kind: str): ...


@runtime_checkable
class MovesOptions(Protocol):
    """Had constructor options that now live elsewhere: the optimiser settings, which moved to the recipe's
    `train.phases.<phase>`. A recipe or config.json that still has them loads, translated (core.recipe's
    translate_moved): `moved_options(options, prior)` -> {old key: (setting, phases)} for a model section `options`
    and its prior's class (None without one); the old key's value becomes `train.phases.<phase>.<setting>` of each
    phase named."""

    def moved_options(self, options: dict, prior) -> dict: ...


# -- priors -----------------------------------------------------------------------------------------------------


@runtime_checkable
class HasDivergence(Protocol):
    """A prior that matches codes itself and can say how far two code samples are apart (`divergence(x, y)`,
    differentiable): ALAE's push/pull steps use it in place of a discriminator (the MBRCE prior)."""

    def divergence(self, x, y): ...


# -- datasets ---------------------------------------------------------------------------------------------------


@runtime_checkable
class ServesResolutions(Protocol):
    """Gives its images at a lower resolution (`at_resolution(r)` -> a dataset of the same images at r x r):
    needed by progressive growing."""

    def at_resolution(self, resolution: int): ...


# What a component without the ability lacks, for the one-line error: "<name> cannot <doing>: it <lacks>".
LACKS = {
    Grows: "does not grow progressively (no set_growth and resolutions)",
    FitsBeforeExport: "fits nothing before export (no prepare_export)",
    MapsPriorCodes: "has no mapping from prior codes (no code_from_prior)",
    HasPosterior: "has no posterior distribution (no posterior(x))",
    DrawsCodePaths: "draws no code paths of its own (no codes_between)",
    EditsAttributes: "has no attribute directions (no attribute_direction)",
    MixesStyles: "has no style slots (no style_mix)",
    MovesOptions: "moved no options elsewhere (no moved_options)",
    HasDivergence: "has no divergence(x, y)",
    ServesResolutions: "cannot give its images at lower resolutions (no at_resolution)",
}


def members(ability: type) -> tuple[list[str], list[str]]:
    """(methods, attributes) an ability asks for: its public functions and its annotated names."""
    methods = [n for n, v in vars(ability).items() if not n.startswith("_") and inspect.isfunction(v)]
    attributes = [n for n in getattr(ability, "__annotations__", {}) if not n.startswith("_")]
    return methods, attributes


def can(component, ability: type) -> bool:
    """Whether `component` has every member of `ability`: its methods callable, its attributes present.
    (Stricter than isinstance on a runtime Protocol, which accepts a non-callable attribute of a method's name.)"""
    methods, attributes = members(ability)
    for name in methods + attributes:
        try:
            value = getattr(component, name)
        except AttributeError:
            return False
        if name in methods and not callable(value):
            return False
    return True


def require(component, ability: type, name: str, doing: str, fix: str) -> None:
    """Fail with one line unless `component` (called `name`, e.g. "model 'vae'") can do `ability`."""
    if not can(component, ability):
        raise GenzooError(f"{name} cannot {doing}: it {LACKS[ability]}", fix)
