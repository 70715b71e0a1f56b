"""Latent Bernoulli autoencoder (the LBAE paper): binary codes, the arcsine-law sampler, learning, export, the CLI."""

import json
import math
import shutil

import pytest
import torch
from PIL import Image

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import load_recipe
from genzoo.core.registry import DATASETS
from genzoo.modelfile.folder import create_model
from genzoo.models.lbae import BernoulliCodes
from genzoo.samplers.arcsine import fit_arcsine_sampler, nearest_positive_definite
from genzoo.train.trainer import Trainer
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import TINY_LBAE, write_recipe

# With n samples a second moment of +-1 variables has standard error <= 1/sqrt(n); 20k samples: 0.007.
SAMPLES, MOMENT_TOL = 20_000, 0.04


@pytest.fixture
def trained_lbae(tiny_run):
    """The shared tiny LBAE (TINY_LBAE, 90 steps; tests/helpers/runs.py)."""
    return tiny_run("lbae")


def moments(b: torch.Tensor):
    b = b.double()
    return b.T @ b / len(b), b.mean(0)


def test_codes_are_exactly_plus_minus_one_with_a_straight_through_gradient():
    model = create_model(TINY_LBAE["model"], None, (1, 8, 8))
    x = torch.rand(16, 1, 8, 8)
    codes = model.encode(x)
    assert set(codes.unique().tolist()) == {-1.0, 1.0} and codes.shape == (16, 24)
    model.loss(x)[0].backward()
    assert model.to_code.weight.grad.abs().sum() > 0 and model.encoder[0].weight.grad.abs().sum() > 0
    assert set(model.prior.sample(50).unique().tolist()) == {-1.0, 1.0}  # unfitted: i.i.d. +-1


def correlated_codes(n, z, seed=0, bias=0.0):
    """Codes from a sign model with known structure: shared factors make bits correlated, offsets bias their means."""
    g = torch.Generator().manual_seed(seed)
    factors = torch.randn(n, 3, generator=g)
    loading = torch.randn(3, z, generator=g)
    offset = torch.randn(z, generator=g) * bias
    return torch.where(factors @ loading + offset + 0.5 * torch.randn(n, z, generator=g) >= 0, 1.0, -1.0)


def test_cov_sampler_reproduces_second_moments():
    """Codes of a zero-mean sign-Gaussian model: H is positive definite as it stands, moments come back to 0.04."""
    train = correlated_codes(5000, 16)
    sampler = BernoulliCodes(16)
    assert not sampler.fit(train)
    d, m = moments(train)
    samples = sampler.sample(SAMPLES, generator=torch.Generator().manual_seed(1))
    assert set(samples.unique().tolist()) == {-1.0, 1.0}
    ds, ms = moments(samples)
    assert (ds - d).abs().max() < MOMENT_TOL and (ms - m).abs().max() < MOMENT_TOL
    # i.i.d. +-1 does not: the structure is real
    dr, _ = moments(sampler.sample(SAMPLES, method="random"))
    assert (dr - d).abs().max() > 0.3


def test_biased_codes_need_the_fix_and_still_come_close():
    """With biased bits the arcsine matrix is slightly indefinite; after Higham's fix moments agree to 0.1."""
    train = correlated_codes(5000, 16, bias=0.7)
    sampler = BernoulliCodes(16)
    assert sampler.fit(train)
    d, m = moments(train)
    ds, ms = moments(sampler.sample(SAMPLES, generator=torch.Generator().manual_seed(1)))
    assert (ds - d).abs().max() < 0.1 and (ms - m).abs().max() < 0.1


def test_too_few_codes_need_the_nearest_positive_definite_fix():
    train = correlated_codes(12, 40, seed=3)  # fewer codes than bits: G is singular and H is not PD
    chol, mean, fixed = fit_arcsine_sampler(train)
    assert fixed and torch.isfinite(chol).all()
    h = torch.sin(torch.pi / 2 * torch.eye(3, dtype=torch.float64) - 2)  # an indefinite symmetric matrix
    assert torch.linalg.eigvalsh(h).min() < 0
    fixed_h = nearest_positive_definite(h)
    assert torch.linalg.cholesky_ex(fixed_h)[1] == 0 and (fixed_h - fixed_h.T).abs().max() == 0
    sampler = BernoulliCodes(40)
    sampler.fit(train)
    ds, ms = moments(sampler.sample(SAMPLES))
    d, m = moments(train)
    # degenerate input: the fix shrinks the moments towards 0 but keeps them (means within 0.2, correlated)
    assert (
        (ms - m).abs().max() < 0.2 and (ds - d).abs().mean() < 0.1 and torch.corrcoef(torch.stack([ms, m]))[0, 1] > 0.9
    )


def test_lbae_learns_and_exports_its_fitted_sampler(trained_lbae):
    records = [json.loads(line) for line in (trained_lbae / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss/reconstruction"] < 0.7 * records[0]["loss/reconstruction"], records
    model = genzoo.load(trained_lbae)
    assert model.prior.is_fitted and int(model.prior.fit_images) == 1500
    # the exported sampler is the one fitted on the training codes of the exported weights
    train = DATASETS.get("digits")("train")
    codes = model.encode_dataset(train)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    _, mean, _ = fit_arcsine_sampler(codes)
    assert torch.allclose(model.prior.code_mean.double(), mean, atol=1e-6)
    d, m = moments(codes)
    ds, ms = moments(model.prior.sample(SAMPLES, generator=torch.Generator().manual_seed(0)))
    tol = MOMENT_TOL if not fit_arcsine_sampler(codes)[2] else 0.1  # the fix moves them a little (see above)
    assert (ms - m).abs().max() < tol and (ds - d).abs().max() < tol
    images = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 8, 8) and 0 <= images.min() and images.max() <= 1


def test_interpolation_and_attribute_change(trained_lbae):
    model = genzoo.load(trained_lbae)
    test = DATASETS.get("digits")("test")
    x = test.images[:4].float() / 255
    path = model.interpolate(x[:2], x[2:4], steps=5)
    assert path.shape == (2, 7, 1, 8, 8)
    assert torch.allclose(path[:, 0], model.reconstruct(x[:2]), atol=1e-6)
    assert torch.allclose(path[:, -1], model.reconstruct(x[2:4]), atol=1e-6)

    train = DATASETS.get("digits")("train")
    direction = model.attribute_direction(train, attribute=0)  # class labels: the attribute "is a zero"
    train.labels = (train.labels == 0).long()
    assert torch.equal(model.attribute_direction(train), direction)  # the same as a 0/1 label
    line = model.codes_between(model.encode(x[:1])[0], model.encode(x[1:2])[0], torch.linspace(0, 1, 5))
    assert line.shape == (5, 24) and set(line.unique().tolist()) <= {-1.0, 1.0}
    assert direction.shape == (24,) and direction.abs().max() <= 2
    threshold = float(direction.abs().sort().values[-6])  # the 6 most telling bits
    changed = model.change_attribute(x, direction, threshold=threshold - 1e-6)
    assert changed.shape == x.shape
    set_codes = torch.where(direction.abs() >= threshold, torch.sign(direction), model.encode(x))
    assert torch.allclose(changed, model.decode(set_codes))
    steps = model.change_attribute(x, direction, threshold=threshold - 1e-6, steps=4)
    assert steps.shape == (4, 6, 1, 8, 8) and torch.allclose(steps[:, -1], changed)
    with pytest.raises(GenzooError, match="no labels"):
        train.labels = None
        model.attribute_direction(train)


def test_fid_of_interpolations_decodes_binary_codes_on_the_lbae_paths(trained_lbae):
    """The FID `interpolations` source takes LBAE's codes along its own paths (codes_between): binary codes, the
    decoded images those of the path points. (It used to call the image-level `interpolate` with codes.)"""
    from genzoo.metrics.fid import codes_between, model_images, quantize

    model = genzoo.load(trained_lbae)
    test = DATASETS.get("digits")("test")
    images = model_images(model, test, "interpolations", count=5, seed=3)
    g = torch.Generator().manual_seed(3)  # model_images' draws, in its order
    first = torch.randint(len(test), (5,), generator=g)
    second = torch.randint(len(test), (5,), generator=g)
    t = torch.rand(5, 1, generator=g)
    x1 = test.images[first.tolist()].float() / 255
    x2 = test.images[second.tolist()].float() / 255
    codes = codes_between(model, model.encode(x1), model.encode(x2), t)
    assert codes.shape == (5, 24) and set(codes.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(images, quantize(model.decode(codes)))


def test_lbae_refuses_a_prior_section_and_odd_sizes(tmp_path):
    with pytest.raises(GenzooError, match="takes no prior"):
        load_recipe(write_recipe(tmp_path, "p", base={**TINY_LBAE, "prior": {"name": "gaussian"}}))
    with pytest.raises(GenzooError, match="divisible by 8"):
        create_model({"name": "lbae", "latent_dim": 8, "levels": 2}, None, (1, 28, 30))
    # MNIST padded to 32x32 as the reference does
    model = create_model({"name": "lbae", "latent_dim": 200, "decoder_start_channels": 1}, None, (1, 32, 32))
    assert model.decode(model.encode(torch.rand(2, 1, 32, 32))).shape == (2, 1, 32, 32)
    assert model.decoder_input == (1, 4, 4) and math.prod(model.feature_shape) == 256 * 16


def test_sample_reconstruct_and_attribute_commands(trained_lbae, tmp_path):
    run_cli(
        "sample",
        trained_lbae,
        "-n",
        "10",
        "--out",
        tmp_path / "grid.png",
        "--images-dir",
        tmp_path / "imgs",
        "--seed",
        "2",
        env=ONE_THREAD,
    )
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 10 and Image.open(files[0]).size == (8, 8)
    assert Image.open(tmp_path / "grid.png").size[0] > 8 * 3
    run_cli("reconstruct", trained_lbae, "-n", "8", "--out", tmp_path / "rec.png", env=ONE_THREAD)
    w, h = Image.open(tmp_path / "rec.png").size
    assert h > w / 8 * 1.5
    # the attribute command in-process (its subprocess path is the same Typer app as above)
    from typer.testing import CliRunner

    from genzoo.cli import app

    result = CliRunner().invoke(
        app, ["attribute", str(trained_lbae), "0", "-n", "3", "--steps", "4", "--out", str(tmp_path / "attr.png")]
    )
    assert result.exit_code == 0, result.output
    w, h = Image.open(tmp_path / "attr.png").size
    assert w > h and "added '0'" in result.output  # 3 rows of 6: reconstruction, 4 steps, changed
    result = CliRunner().invoke(app, ["attribute", str(trained_lbae), "Smiling"])
    assert result.exit_code == 1 and "no attribute 'Smiling'" in result.output


def test_resume_gives_the_same_weights_and_exported_sampler(tmp_path):
    """Stopped at a checkpoint and resumed: the same weights and the same exported (fitted) sampler as one run."""
    from genzoo.core.io import load_tensors
    from genzoo.train.checkpoint import Checkpoints

    settings = {"steps": 8, "checkpoint_every": 4, "sample_every": 4, "log_every": 4}
    full = write_recipe(tmp_path, "full", base=TINY_LBAE, train=settings)
    parts = write_recipe(tmp_path, "parts", base=TINY_LBAE, train=settings)
    Trainer(load_recipe(full)).fit()
    Trainer(load_recipe(parts, ["train.steps=4"])).fit()
    Trainer(load_recipe(parts)).fit()
    a = load_tensors(Checkpoints(tmp_path / "runs" / "full").latest() / "model.safetensors")
    b = load_tensors(Checkpoints(tmp_path / "runs" / "parts").latest() / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("prior."))
    # (the checkpoints' prior.* buffers hold the sampler of the export before them, so they differ: see the report)
    ea = load_tensors(tmp_path / "runs" / "full" / "model" / "model.safetensors")
    eb = load_tensors(tmp_path / "runs" / "parts" / "model" / "model.safetensors")
    assert ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea)
    assert ea["prior.fitted"] == 1


def test_interpolate_tool_keeps_binary_codes():
    """`genzoo interpolate` between two images of an LBAE decodes only +-1 codes (its own path between them), never
    the straight line's fractional codes the decoder was not trained on."""
    from genzoo.analysis.interpolate import interpolate

    model = create_model(TINY_LBAE["model"], None, (1, 8, 8)).eval()
    seen = []
    decode = model.decode
    model.decode = lambda z: seen.append(z) or decode(z)
    codes = model.encode(torch.rand(2, 1, 8, 8))
    images = interpolate(model, codes, steps=6)
    path = torch.cat(seen)
    assert images.shape == (6, 1, 8, 8) and path.shape == (6, codes.shape[1])
    assert set(path.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(path[0], codes[0]) and torch.equal(path[-1], codes[1])


def test_fit_sampler_arcsine_on_a_trained_lbae_from_the_command_line(trained_lbae, tmp_path):
    from genzoo.samplers.arcsine import implied_moments
    from tests.helpers.cli import ONE_THREAD, run_cli

    trained_lbae = shutil.copytree(trained_lbae, tmp_path / "lbae")  # fit-sampler writes into the run: a copy
    out = run_cli("fit-sampler", trained_lbae, "--sampler", "arcsine", env=ONE_THREAD).stdout
    assert "largest moment error" in out
    config = json.loads((trained_lbae / "model" / "samplers" / "arcsine" / "config.json").read_text())
    fit = config["fit"]
    # no density to score; the held-out codes' moments within the sampling error of their count (each entry's
    # standard error is at most 1/sqrt(n), and the maximum over the 300 entries stays below 5 of them)
    assert fit["log_likelihood_held_out"] is None
    assert 0 < fit["moment_error_held_out"] < 5 / fit["held_out_codes"] ** 0.5
    model = genzoo.load(trained_lbae, sampler="arcsine")
    codes = model.code_sampler.sample(500, generator=torch.Generator().manual_seed(0))
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    images = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert images.shape[0] == 8 and torch.isfinite(images).all()
    # fitted on the same training codes as the prior LBAE fits at export: the same factor up to the held-out tenth
    own = genzoo.load(trained_lbae).prior
    assert (implied_moments(own.chol) - implied_moments(model.code_sampler.chol)).abs().max() < 0.1
