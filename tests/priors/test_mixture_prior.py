"""The `mixture` prior: the mbrce prior's mixture target as a prior of its own, with a density, so that the AAE's
discriminator and the VAE's KL can be paired with it (the D x mixture and KL x mixture cells of a factorial study)."""

import math

import pytest
import torch

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import load_recipe
from genzoo.core.registry import PRIORS
from genzoo.train.trainer import Trainer
from tests.helpers.recipes import write_recipe

MIXTURE = {"name": "mixture", "modes": 10, "radius": 4.0, "mode_std": 0.5}


@pytest.mark.parametrize("dim", [2, 8])
def test_log_prob_equals_torch_distributions(dim):
    prior = PRIORS.get("mixture")(dim=dim, modes=7, radius=3.0, mode_std=0.4).double()
    d = torch.distributions
    reference = d.MixtureSameFamily(
        d.Categorical(torch.ones(7, dtype=torch.float64)),
        d.Independent(d.Normal(prior.means, torch.full_like(prior.means, 0.4)), 1),
    )
    z = torch.randn(500, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    torch.testing.assert_close(prior.log_prob(z), reference.log_prob(z), rtol=0, atol=1e-10)


def test_log_prob_far_from_the_modes_in_float32():
    """log-sum-exp, not log(sum(exp)): a code 60 units out has a log-density near -7,000 in float32 too."""
    prior = PRIORS.get("mixture")(dim=8)
    z = torch.full((3, 8), 60.0) * torch.tensor([[1.0], [-1.0], [0.5]])
    low, high = prior.log_prob(z), prior.double().log_prob(z.double())
    assert torch.isfinite(low).all() and (high < -5000).all()
    torch.testing.assert_close(low.double(), high, rtol=1e-6, atol=0)


def test_samples_are_the_mbrce_targets():
    """The same distribution, draw for draw, as the mbrce prior's mixture target: a study's D x mixture and
    MBRCE x mixture arms sample one prior."""
    mixture = PRIORS.get("mixture")(dim=8)
    mbrce = PRIORS.get("mbrce")(dim=8, target="mixture")
    a = mixture.sample(1000, generator=torch.Generator().manual_seed(3))
    b = mbrce.sample(1000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    # ten modes on a circle of radius 4 in the first two coordinates, spread 0.5 everywhere
    assert abs(a[:, :2].norm(dim=1).mean().item() - 4.0) < 0.1
    assert abs(a[:, 2:].std().item() - 0.5) < 0.02


def test_vae_monte_carlo_kl_to_the_mixture_agrees_with_quadrature():
    """The VAE's one-sample KL, averaged, equals KL(q || mixture) integrated on a fine 2-D grid."""
    model = genzoo.create_model(
        {"name": "vae", "network": "mlp", "latent_dim": 2, "hidden": 8}, {**MIXTURE, "modes": 4, "radius": 2.0}
    )
    mean = torch.tensor([[0.7, 1.5]], dtype=torch.float64)
    log_var = torch.tensor([[math.log(0.3**2), math.log(0.6**2)]], dtype=torch.float64)
    prior = model.prior.double()
    torch.manual_seed(0)
    draws = torch.cat([model.kl(mean.expand(50_000, 2), log_var.expand(50_000, 2)) for _ in range(8)])
    mc, error = draws.mean().item(), draws.std().item() / math.sqrt(len(draws))
    # independent: the Gaussian's entropy in closed form, E_q[log p] by the midpoint rule on [-6, 6]^2
    step = 12 / 1200
    axis = torch.arange(-6 + step / 2, 6, step, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    std = (0.5 * log_var).exp()
    q = torch.exp(-0.5 * ((grid - mean) / std).pow(2).sum(1)) / (2 * math.pi * std.prod())
    cross = (q * prior.log_prob(grid)).sum().item() * step**2
    entropy = 0.5 * (2 * (1 + math.log(2 * math.pi)) + log_var.sum().item())
    exact = -entropy - cross
    assert model._kl_mode == "monte_carlo"
    assert abs(mc - exact) < 4 * error, (mc, exact, error)


@pytest.mark.parametrize("model", ["mlp_aae", "vae"])
def test_discriminator_and_kl_train_against_the_mixture(tmp_path, model):
    """A real short training on digits: the AAE keeps its discriminator (fed mixture samples), the VAE its KL term."""
    sections = {"model": {"name": "vae", "network": "mlp", "latent_dim": 4, "hidden": 64}} if model == "vae" else {}
    recipe = load_recipe(write_recipe(tmp_path, prior=MIXTURE, **sections), ["train.steps=20"])
    trained = genzoo.load(Trainer(recipe).fit())
    assert type(trained.prior).__name__ == "MixturePrior"
    if model == "mlp_aae":
        assert trained.discriminator is not None
        assert [p.name for p in trained.phases()] == ["reconstruction", "discriminator", "generator"]
    samples = trained.sample(16, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (16, 1, 8, 8) and torch.isfinite(samples).all()
    log = (recipe.run_dir / "metrics.jsonl").read_text()
    assert ('"loss/kl"' in log) == (model == "vae") and "NaN" not in log


def test_bad_mixture_settings_are_recipe_errors(tmp_path):
    with pytest.raises(GenzooError, match="mode_std"):
        load_recipe(write_recipe(tmp_path, prior={**MIXTURE, "mode_std": 0.0}))
    with pytest.raises(GenzooError, match="latent_dim >= 2"):
        genzoo.create_model({"name": "mlp_aae", "latent_dim": 1}, MIXTURE)
