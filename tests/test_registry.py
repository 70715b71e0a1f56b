import textwrap

import pytest
from conftest import run_cli, write_recipe

from genzoo.core.errors import GenzooError
from genzoo.core.registry import MODELS, PRIORS, Registry


def test_register_get_and_did_you_mean():
    reg = Registry("widget")
    reg._entries.clear()

    @reg.register("round_widget")
    class Round:
        """A round widget."""

    assert reg.get("round_widget") is Round
    with pytest.raises(GenzooError, match="unknown widget 'round_widgte' \\(did you mean 'round_widget'\\?\\)"):
        reg.get("round_widgte")
    with pytest.raises(GenzooError, match="registered twice"):
        reg.register("round_widget", object)


def test_builtins_are_listed():
    assert "gaussian" in PRIORS.names() and "mlp_aae" in MODELS.names()
    assert PRIORS.entry("gaussian").source == "genzoo"


def make_plugin(site, dist, module, body):
    """A real installed distribution (dist-info with an entry point), as pip would leave it."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[genzoo.plugins]\n{module} = {module}\n")


GOOD = """
    import torch
    from genzoo.hookspecs import hookimpl
    from genzoo.priors.base import Prior

    class UniformPrior(Prior):
        '''Uniform on [-width, width]^dim.'''
        def __init__(self, dim: int, width: float = 1.0):
            super().__init__(dim)
            self.width = width
        def sample(self, n, generator=None):
            return (torch.rand(n, self.dim, generator=generator) * 2 - 1).to(self._device_anchor.device) * self.width

    @hookimpl
    def genzoo_register_components(priors):
        priors.register("uniform", UniformPrior)
"""


def test_plugins_register_and_broken_ones_only_warn(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_plugin(site, "genzoo-uniform", "genzoo_uniform", GOOD)
    make_plugin(site, "genzoo-broken", "genzoo_broken", "raise RuntimeError('boom at import')\n")
    env = {"PYTHONPATH": str(site)}
    listed = run_cli("list", "priors", env=env)
    assert "uniform" in listed.stdout and "genzoo-uniform" in listed.stdout
    assert "genzoo-broken" in listed.stderr and "boom at import" in listed.stderr and "ignored" in listed.stderr
    # the plugin's prior trains with the built-in architecture, options validated like built-ins
    recipe = write_recipe(
        tmp_path, prior={"name": "uniform", "width": 3.0}, train={"steps": 10, "checkpoint_every": 10}
    )
    run_cli("train", recipe, env=env)
    bad = run_cli("train", recipe, "prior.widht=2", env=env, check=False)
    assert bad.returncode == 1 and "prior.widht" in bad.stderr and "did you mean 'width'" in bad.stderr
