"""The MBRCE prior: targets, matching loss, and a real MBRCE-AAE training run on MNIST."""

import pytest
import torch

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import load_recipe
from genzoo.core.registry import DATASETS, PRIORS
from genzoo.train.trainer import Trainer
from tests.helpers.recipes import ROOT, TINY_MBRCE_PHASES, shared, write_recipe


@pytest.mark.parametrize("target", ["gaussian", "mixture", "uniform", "sphere"])
def test_targets_and_matching(target):
    prior = PRIORS.get("mbrce")(dim=4, target=target, std=2.0, radius=3.0)
    z = prior.sample(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 4)
    if target == "gaussian":
        assert abs(z.std().item() - 2.0) < 0.05
    if target == "sphere":
        assert torch.allclose(z.norm(dim=1), torch.full((4000,), 3.0), atol=1e-5)
    if target == "uniform":
        assert z.abs().max() <= 2.0 and abs(z.var().item() - 4 / 3) < 0.06
    if target == "mixture":  # the ten modes sit on a circle of radius 3 in the first two coordinates
        assert abs(z[:, :2].norm(dim=1).mean().item() - 3.0) < 0.1 and abs(z[:, 2:].std().item() - 0.5) < 0.03
    # matching a sample of the target itself costs far less than matching a shifted cloud
    own = prior.matching_loss(prior.sample(200, generator=torch.Generator().manual_seed(1)))
    shifted = prior.matching_loss(prior.sample(200, generator=torch.Generator().manual_seed(1)) + 5.0)
    assert own < 0.2 * shifted


def test_bad_settings_are_recipe_errors(tmp_path):
    recipe = write_recipe(tmp_path, prior={"name": "mbrce"}, train={"phases": TINY_MBRCE_PHASES})
    # alpha = 1 is a float the recipe accepts; the prior refuses it when the run builds it, before any step
    trainer = Trainer(load_recipe(recipe, ["prior.alpha=1.0"]))
    with pytest.raises(
        GenzooError, match=r"^prior 'mbrce': alpha must be > 0 and != 1 \(got 1\.0\): .* Shannon"
    ) as raised:
        trainer.fit()
    assert raised.value.fix == "fix prior.alpha / prior.measure / prior.mix"
    assert not (tmp_path / "runs" / "tiny" / "checkpoints").exists()
    with pytest.raises(GenzooError, match=r"recipe key 'prior.measure' must be one of .* got 'tripartite'"):
        load_recipe(recipe, ["prior.measure=tripartite"])


@pytest.mark.slow  # 600 steps on real MNIST: 42 s on a busy machine
def test_mbrce_aae_has_no_discriminator_and_trains_on_mnist(tmp_path):
    """Small budget, real MNIST: codes match the mixture prior better than at the start, by the estimator and MMD."""
    mnist = shared("mnist")
    recipe = load_recipe(
        ROOT / "recipes" / "mbrce_mnist.yaml",
        [
            f"data.root={mnist}",
            f"output_dir={tmp_path}",
            "model.hidden=256",
            "train.epochs=null",
            "train.steps=600",
            "train.checkpoint_every=600",
        ],
    )
    metric = __import__("genzoo.metrics.prior_match", fromlist=["prior_match"]).prior_match
    test_set = DATASETS.get("mnist")("test", root=str(mnist), download=False)
    torch.manual_seed(0)
    untrained = genzoo.create_model(recipe.model, recipe.prior, (1, 28, 28)).eval()
    assert untrained.discriminator is None and [p.name for p in untrained.phases()] == ["reconstruction", "prior"]
    before = metric(untrained, test_set)
    after = metric(genzoo.load(Trainer(recipe).fit()), test_set)
    print("prior match before/after:", before, after)
    assert after["renyi_divergence"] < 0.5 * before["renyi_divergence"], (before, after)
    assert after["mmd"] < 0.5 * before["mmd"], (before, after)
