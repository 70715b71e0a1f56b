"""The hooks a genzoo plugin implements (pluggy, as pytest does).

A plugin is a module named by an entry point in the group `genzoo.plugins` of its package's pyproject:

    [project.entry-points."genzoo.plugins"]
    my_prior = "my_package.plugin"

and that module implements the hook, asking only for the registries it uses:

    from genzoo.hookspecs import hookimpl

    @hookimpl
    def genzoo_register_components(priors):
        priors.register("laplace", LaplacePrior)
"""

import pluggy

hookspec = pluggy.HookspecMarker("genzoo")
hookimpl = pluggy.HookimplMarker("genzoo")


@hookspec
def genzoo_register_components(priors, models, datasets, metrics, samplers):
    """Register components. Each argument is a genzoo.core.registry.Registry; name only the ones you use."""
