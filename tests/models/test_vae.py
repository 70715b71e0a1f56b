"""Convolutional VAE (torch-vae): closed-form KL, learning on real digits, the MBRCE prior, the CLI on a trained
one."""

import json
import math

import pytest
import torch
from PIL import Image

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import load_recipe
from genzoo.modelfile.folder import create_model
from genzoo.models.vae import gaussian_kl
from genzoo.priors.base import Prior
from genzoo.train.trainer import Trainer
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import TINY_VAE, write_recipe


def log(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def trained_vae(tiny_run):
    """The shared tiny VAE (TINY_VAE, 90 steps; tests/helpers/runs.py)."""
    return tiny_run("vae")


def test_analytic_kl_agrees_with_monte_carlo():
    """KL(N(m, s^2) || N(mu, sigma^2)) in closed form vs the mean of log q(z) - log p(z) over 400k samples."""
    torch.manual_seed(0)
    mean, log_var = torch.randn(3, 5) * 0.8, torch.randn(3, 5) * 0.5
    prior_mean, prior_std = 0.5, 2.0
    exact = gaussian_kl(mean, log_var, prior_mean, prior_std)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.full_like(mean, prior_mean), torch.full_like(mean, prior_std))
    z = q.sample((400_000,))
    terms = (q.log_prob(z) - p.log_prob(z)).sum(-1)
    mc, se = terms.mean(0), terms.std(0) / math.sqrt(len(terms))
    assert torch.all((exact - mc).abs() < 4 * se + 1e-4), (exact, mc, se)
    assert torch.allclose(exact, torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-5)
    # the model uses exactly this term with the prior's own mean and std
    model = create_model(
        {"name": "vae", "latent_dim": 5, "max_filters": 8, "layers": 1},
        {"name": "gaussian", "std": prior_std, "mean": prior_mean},
        (1, 8, 8),
    )
    assert torch.allclose(model.kl(mean, log_var), exact)


def test_a_prior_with_only_a_density_gets_a_monte_carlo_kl():
    class Laplace(Prior):
        has_log_prob = True

        def sample(self, n, generator=None):
            return torch.distributions.Laplace(0.0, 1.0).sample((n, self.dim))

        def log_prob(self, z):
            return torch.distributions.Laplace(0.0, 1.0).log_prob(z).sum(-1)

    from genzoo.models.vae import ConvVAE

    model = ConvVAE((1, 8, 8), Laplace(4), latent_dim=4, max_filters=8, layers=1)
    torch.manual_seed(1)
    mean, log_var = torch.zeros(200_000, 4), torch.zeros(200_000, 4)
    estimates = model.kl(mean, log_var)  # one sample per row
    # KL(N(0,1) || Laplace(0,1)) = -H(N(0,1)) + log 2 + E|z| = -0.5 log(2 pi e) + log 2 + sqrt(2/pi), per dimension
    exact = 4 * (-0.5 * math.log(2 * math.pi * math.e) + math.log(2) + math.sqrt(2 / math.pi))
    assert abs(estimates.mean().item() - exact) < 0.05

    class NoDensity(Prior):
        def sample(self, n, generator=None):
            return torch.zeros(n, self.dim)

    with pytest.raises(GenzooError, match="cannot be used with model 'vae'"):
        ConvVAE((1, 8, 8), NoDensity(4), latent_dim=4)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 17, 23)])
def test_any_image_size_round_trips(shape):
    model = create_model({"name": "vae", "latent_dim": 6, "max_filters": 16, "layers": 3}, {"name": "gaussian"}, shape)
    x = torch.rand(2, *shape)
    assert model.decode(model.encode(x)).shape == (2, *shape)
    loss, logs = model.loss(x)
    assert loss.isfinite() and set(logs) == {"reconstruction", "kl"}


def test_vae_learns_on_digits(trained_vae):
    records = log(trained_vae)
    assert records[-1]["loss/reconstruction"] < 0.75 * records[0]["loss/reconstruction"], records
    from genzoo.core.registry import DATASETS
    from genzoo.metrics.reconstruction import reconstruction

    test = DATASETS.get("digits")("test")
    torch.manual_seed(0)
    untrained = create_model(TINY_VAE["model"], TINY_VAE["prior"], (1, 8, 8)).eval()
    assert reconstruction(genzoo.load(trained_vae), test)["mse"] < 0.8 * reconstruction(untrained, test)["mse"]


def test_vae_with_the_mbrce_prior_trains_without_a_kl_term(tmp_path):
    recipe = write_recipe(
        tmp_path,
        "vae_mbrce",
        base=TINY_VAE,
        prior={"name": "mbrce", "target": "mixture", "modes": 4},
        model={"prior_weight": 10.0},
        train={"steps": 45, "checkpoint_every": 45, "sample_every": 45},
    )
    run = Trainer(load_recipe(recipe)).fit()
    records = log(run)
    assert all("loss/kl" not in r and math.isfinite(r["loss/prior"]) for r in records)
    assert records[-1]["loss/reconstruction"] < 0.8 * records[0]["loss/reconstruction"]
    model = genzoo.load(run)
    assert model.prior.matches_codes and model.sample(5).shape == (5, 1, 8, 8)


def test_sample_and_reconstruct_commands(trained_vae, tmp_path):
    run_cli(
        "sample",
        trained_vae,
        "-n",
        "12",
        "--out",
        tmp_path / "grid.png",
        "--images-dir",
        tmp_path / "imgs",
        env=ONE_THREAD,
    )
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 12 and Image.open(files[0]).size == (8, 8)
    assert Image.open(tmp_path / "grid.png").size[0] > 8 * 3
    run_cli("reconstruct", trained_vae, "-n", "8", "--out", tmp_path / "rec.png", env=ONE_THREAD)
    w, h = Image.open(tmp_path / "rec.png").size
    assert h > w / 8 * 1.5  # originals above reconstructions


def test_mlp_network_matches_the_mlp_aae_in_size():
    """`network: mlp` gives the AAE's encoder and decoder sizes (the study's size-matched VAE baseline)."""
    import genzoo

    vae = genzoo.create_model(
        {"name": "vae", "network": "mlp", "latent_dim": 8, "hidden": 64, "layers": 2, "dropout": 0.2},
        {"name": "gaussian"},
        (1, 28, 28),
    )
    aae = genzoo.create_model(
        {"name": "mlp_aae", "latent_dim": 8, "hidden": 64, "layers": 2, "dropout": 0.2},
        {"name": "gaussian"},
        (1, 28, 28),
    )
    count = lambda *mods: sum(p.numel() for m in mods for p in m.parameters())  # noqa: E731
    assert count(vae.encoder, vae.to_mean, vae.to_log_var) == count(aae.encoder)
    assert count(vae.decoder) == count(aae.decoder)
    vae.eval()
    x = torch.rand(5, 1, 28, 28)
    assert vae.reconstruct(x).shape == x.shape and vae.sample(3).shape == (3, 1, 28, 28)
