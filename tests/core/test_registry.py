import json

import pytest

from genzoo.core.errors import GenzooError
from genzoo.core.registry import MODELS, PRIORS, Registry
from tests.helpers.cli import run_cli
from tests.helpers.plugins import make_plugin
from tests.helpers.recipes import write_recipe


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


def test_metrics_declare_what_their_numbers_are():
    from genzoo.core.registry import MetricRegistry, MetricValue

    reg = MetricRegistry()

    @reg.register("sharpness", better="higher", display="edge sharpness", unit="px")
    def sharpness(model, dataset, limit=None):
        """Edge sharpness of the samples."""

    reg.register("pair", lambda model, dataset: {}, values={"a": MetricValue(better="lower")}, sample_based=True)
    reg.register("plain", lambda model, dataset: {})
    assert reg.get("sharpness") is sharpness
    facts = reg.value_info("sharpness.sharpness")
    assert (facts.better, facts.display, facts.unit) == ("higher", "edge sharpness", "px")
    assert reg.value_info("sharpness.images") is None  # not declared: bookkeeping
    assert reg.value_info("pair.a").display == "pair.a" and reg.info("pair").sample_based
    assert reg.value_info("plain.anything") == MetricValue(display="plain.anything")  # declares nothing: a result
    assert reg.info("uninstalled") == reg.info("plain")  # results of a plugin no longer installed still report
    assert reg.description("sharpness") == "Edge sharpness of the samples. (sharpness: higher is better)"
    with pytest.raises(GenzooError, match="unknown facts lower_is_better"):
        reg.register("x", sharpness, lower_is_better=True)
    with pytest.raises(GenzooError, match="both values= and better="):
        reg.register("x", sharpness, better="lower", values={"x": MetricValue()})
    with pytest.raises(GenzooError, match="'higher', 'lower' or None"):
        reg.register("x", sharpness, better="smaller")
    with pytest.raises(GenzooError, match="registered twice"):
        reg.register("sharpness", object, better="lower")
    assert reg.value_info("sharpness.sharpness").better == "higher"  # the refused one changed nothing


def test_builtins_are_listed():
    assert "gaussian" in PRIORS.names() and "mlp_aae" in MODELS.names()
    assert PRIORS.entry("gaussian").source == "genzoo"


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
            return (torch.rand(n, self.dim, generator=generator) * 2 - 1).to(self.device) * self.width

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


def test_a_model_built_in_python_saves_loads_and_evaluates(tmp_path):
    """Config at construction: the options a model's and its prior's constructors were called with are recorded,
    so save_pretrained and genzoo.evaluate work without a recipe (an AttributeError before)."""
    import torch

    import genzoo
    from genzoo.modelfile.folder import load_folder, save_pretrained
    from genzoo.models.mlp_aae import MLPAAE, MLPAE
    from genzoo.priors.gaussian import GaussianPrior

    model = MLPAAE((1, 8, 8), GaussianPrior(4, std=2.0), latent_dim=4, hidden=32, dropout=0.0).eval()
    save_pretrained(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["hidden"] == 32 and config["model"]["dropout"] == 0.0 and config["model"]["layers"] == 2
    assert config["prior"] == {"name": "gaussian", "std": 2.0, "mean": 0.0}
    back = load_folder(tmp_path / "m")
    g = [torch.Generator().manual_seed(1) for _ in range(2)]
    assert torch.equal(model.sample(5, generator=g[0]), back.sample(5, generator=g[1]))
    # a subclass records its own constructor's options, not its parent's
    ae = MLPAE((1, 8, 8), GaussianPrior(4), latent_dim=4, hidden=16, code_l2=0.5)
    assert genzoo.create_model(**{k: v for k, v in _sections(ae).items()}).config["model"]["code_l2"] == 0.5
    images = torch.rand(20, 1, 8, 8)
    out = genzoo.evaluate(model, ["reconstruction"], datasets={"test": torch.utils.data.TensorDataset(images)})
    assert 0 < out["reconstruction"]["mse"] < 1


def _sections(model):
    from genzoo.modelfile.folder import model_config

    c = model_config(model)
    return {"model": c["model"], "prior": c["prior"], "image_shape": c["image_shape"]}
