"""Evaluation metrics against independent references: clean-fid's own code for FID/KID, numpy/scipy for the rest.

Inception runs on the CPU here, so image counts are tiny and features are computed once per module.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from tests.helpers.cleanfid_ref import cleanfid_fid
from tests.helpers.cli import run_cli

N = 12  # images per side for the Inception tests (Inception on a shared 2-core CPU: ~0.3-1 s an image)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """A private GENZOO_CACHE for this module (reference statistics, downloads)."""
    folder = tmp_path_factory.mktemp("genzoo-cache")
    old = os.environ.get("GENZOO_CACHE")
    os.environ["GENZOO_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("GENZOO_CACHE", None)
    else:
        os.environ["GENZOO_CACHE"] = old


@pytest.fixture(scope="module")
def fx():
    pytest.importorskip(
        "cleanfid", reason="clean-fid is not installed (README: pip install --no-deps clean-fid==0.1.35)"
    )
    from genzoo.core.errors import GenzooError
    from genzoo.metrics.fid import extractor

    try:
        return extractor("clean", None, "cpu", 64)
    except GenzooError as exc:
        pytest.skip(f"no Inception weights here ({exc})")


@pytest.fixture(scope="module")
def trained(tiny_run):
    """The shared tiny MLP AAE (30 steps; tests/helpers/runs.py)."""
    return tiny_run("aae")


@pytest.fixture(scope="module")
def model(trained):
    """One loaded model for the module, so that features of its images are computed once (cached per model)."""
    import genzoo

    return genzoo.load(trained)


@pytest.fixture(scope="module")
def digit_sets():
    from genzoo.core.registry import DATASETS, build

    test, _ = build(DATASETS, {"name": "digits"}, "data", split="test")
    train, _ = build(DATASETS, {"name": "digits"}, "data", split="train")
    return test.images[:N], train.images[:N]


@pytest.fixture(scope="module")
def features(fx, digit_sets):
    """Features of the first N test digits (through the reference cache, which the later tests then hit) and of
    N train digits."""
    from genzoo.core.registry import DATASETS, build
    from genzoo.metrics.fid import reference_features

    test, _ = build(DATASETS, {"name": "digits"}, "data", split="test")
    real, _ = reference_features(test, N, fx)
    return real, fx(digit_sets[1])


def _write_pngs(images: torch.Tensor, folder):
    from genzoo.core.grids import save_images

    save_images(images.float() / 255, folder)
    return str(folder)


def _cleanfid_extractor(fx):
    """What clean-fid's InceptionV3W does in clean mode, on the same TorchScript layers."""
    return lambda x: fx.layers((x - 128) / 128).reshape(x.shape[0], 2048)


# -- FID and KID against clean-fid's own code -------------------------------------------------------------------
def test_features_equal_cleanfid_folder_features(fx, digit_sets, features, tmp_path):
    """Our features of in-memory uint8 images == clean-fid's reading, resizing and batching of their PNGs."""
    cf = cleanfid_fid()
    folder = _write_pngs(digit_sets[0], tmp_path / "real")
    theirs = cf.get_folder_features(
        folder,
        _cleanfid_extractor(fx),
        num_workers=0,
        batch_size=64,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )
    # channels-last convolutions sum in another order than clean-fid's batch of 64: at most 5e-6 relative measured
    np.testing.assert_allclose(features[0], theirs, rtol=2e-5, atol=1e-5)


def test_fid_formula_equals_cleanfid():
    """fid_from_features (exact, no sqrtm) == clean-fid's fid_from_feats, with fewer images than dimensions
    (singular covariances: the SVD route) and with more (the eigen route). Low dimensions keep scipy's sqrtm,
    which clean-fid uses, quick; the full 2048 dimensions are compared in
    test_model_fid_equals_cleanfid_on_saved_pngs."""
    cf = cleanfid_fid()
    from genzoo.metrics.fid import fid_from_features

    rng = np.random.default_rng(4)
    for n, d in ((12, 64), (300, 40)):
        real = rng.normal(size=(n, d)).astype(np.float32)
        fake = (rng.normal(size=(n + 5, d)) * 1.2 + 0.3).astype(np.float32)
        ours, theirs = fid_from_features(real, fake), cf.fid_from_feats(real, fake)
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-4), (n, d, ours, theirs)


def test_grey_images_are_repeated_to_three_channels(fx, digit_sets):
    grey = digit_sets[0][:2]
    np.testing.assert_array_equal(fx(grey), fx(grey.repeat(1, 3, 1, 1)))
    # grey images are resized once, not three times: bit for bit clean-fid's resizer of the repeated image
    from cleanfid.resize import build_resizer

    theirs = np.stack([build_resizer("clean")(a) for a in grey.repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy()])
    np.testing.assert_array_equal(fx.prepare(grey).permute(0, 2, 3, 1).numpy(), theirs)


def test_kid_equals_cleanfid_and_direct_mmd():
    cf = cleanfid_fid()
    from genzoo.metrics.fid import kernel_distance

    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 16)).astype(np.float32)
    fake = (rng.normal(size=(50, 16)) * 1.3 + 0.4).astype(np.float32)
    ours, _ = kernel_distance(real, fake, subsets=20, subset_size=30, seed=7)
    np.random.seed(7)
    theirs = cf.kernel_distance(real, fake, num_subsets=20, max_subset_size=30)
    assert math.isclose(ours, theirs, rel_tol=1e-4), (ours, theirs)
    # subsets as large as the smaller set: every subset of the smaller side is all of it; with equal sizes the
    # estimate is the unbiased MMD^2 of the full sets, written out here
    full, _ = kernel_distance(real[:50], fake, subsets=3, subset_size=1000)
    x, y = fake.astype(np.float64), real[:50].astype(np.float64)
    k = lambda a, b: (a @ b.T / 16 + 1) ** 3  # noqa: E731
    m = len(x)
    mmd = (
        (k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1))
        + (k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )
    assert math.isclose(full, mmd, rel_tol=1e-9)


# -- precision/recall, PRD, Parzen against numpy/scipy -----------------------------------------------------------
def test_improved_precision_recall_matches_brute_force():
    from scipy.spatial.distance import cdist

    from genzoo.metrics.precision_recall import improved_precision_recall

    rng = np.random.default_rng(1)
    real = rng.normal(size=(80, 10))
    fake = rng.normal(size=(70, 10)) * 0.6 + 0.5

    def brute(a, b, k=3):  # fraction of b inside a's k-NN balls
        radii = np.sort(cdist(a, a), axis=1)[:, k]
        return float((cdist(b, a) <= radii[None, :]).any(axis=1).mean())

    precision, recall = improved_precision_recall(real, fake, k=3)
    assert precision == pytest.approx(brute(real, fake)) and recall == pytest.approx(brute(fake, real))
    assert 0 < precision < 1 and 0 < recall < 1
    assert improved_precision_recall(real, real, k=3) == (1.0, 1.0)


def test_density_and_coverage_match_brute_force():
    """Naeem et al. 2020 written out with scipy distances: density = sum over fakes of the real balls they fall in
    / (k * fakes), coverage = fraction of real balls holding a fake; the balls are precision's."""
    from scipy.spatial.distance import cdist

    from genzoo.metrics.precision_recall import improved_precision_recall, precision_recall_density_coverage

    rng = np.random.default_rng(2)
    real = rng.normal(size=(90, 8))
    fake = rng.normal(size=(60, 8)) * 0.7 + 0.4
    k = 3
    radii = np.sort(cdist(real, real), axis=1)[:, k]
    inside = cdist(fake, real) <= radii[None, :]
    values = precision_recall_density_coverage(real, fake, k)
    assert values["density"] == pytest.approx(inside.sum() / (k * len(fake)))
    assert values["coverage"] == pytest.approx(inside.any(axis=0).mean())
    assert (values["precision"], values["recall"]) == pytest.approx(improved_precision_recall(real, fake, k))
    assert 0 < values["coverage"] < 1 and values["density"] > 0
    same = precision_recall_density_coverage(real, real, k)
    assert same["coverage"] == 1.0 and same["density"] > 1  # each real point sits in its own and k others' balls


def test_kid_std_is_nonzero_and_equals_an_independent_computation(monkeypatch):
    """Subsets smaller than the samples: the std over subsets is that of MMD^2 estimates recomputed here with
    sklearn's polynomial kernel on the same subsets; a subset as large as a side is refused."""
    from sklearn.metrics.pairwise import polynomial_kernel

    from genzoo.core.errors import GenzooError
    from genzoo.metrics import fid as fid_module

    rng = np.random.default_rng(3)
    real = rng.normal(size=(40, 12)).astype(np.float32)
    fake = (rng.normal(size=(40, 12)) * 1.2 + 0.2).astype(np.float32)
    monkeypatch.setattr(fid_module, "feature_pair", lambda *a, **k: (real, fake, {}))
    result = fid_module.kid(None, None, subsets=25, seed=4)
    assert result["kid_subset_size"] == 20 and result["kid_std"] > 0
    draws = np.random.RandomState(4)
    values = []
    for _ in range(25):
        x = fake[draws.choice(40, 20, replace=False)].astype(np.float64)
        y = real[draws.choice(40, 20, replace=False)].astype(np.float64)
        kxx, kyy = (polynomial_kernel(a, degree=3, gamma=1 / 12, coef0=1) for a in (x, y))
        kxy = polynomial_kernel(x, y, degree=3, gamma=1 / 12, coef0=1)
        m = 20
        values.append(
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        )
    assert result["kid"] == pytest.approx(np.mean(values), rel=1e-9)
    assert result["kid_std"] == pytest.approx(np.std(values), rel=1e-9)
    with pytest.raises(GenzooError, match="not smaller than the samples"):
        fid_module.kid(None, None, subset_size=40)


def test_fid_bootstrap_equals_a_hand_bootstrap(monkeypatch):
    """The bootstrap interval recomputed with scipy's sqrtm FID on the same resamples."""
    from scipy import linalg

    from genzoo.metrics import fid as fid_module

    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 6))
    fake = rng.normal(size=(50, 6)) * 1.3 + 0.5

    def scipy_fid(a, b):
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        d = a.mean(0) - b.mean(0)
        return float(d @ d + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))

    monkeypatch.setattr(fid_module, "feature_pair", lambda *a, **k: (real, fake, {}))
    result = fid_module.fid(None, None, bootstrap=40, seed=9)
    draws = np.random.default_rng(9)
    values = []
    for _ in range(40):
        ri, gi = draws.integers(0, 60, 60), draws.integers(0, 50, 50)
        values.append(scipy_fid(real[ri], fake[gi]))
    full = scipy_fid(real, fake)
    assert result["fid"] == pytest.approx(full, rel=1e-6)
    assert result["fid_bootstrap_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-6)
    assert result["fid_bootstrap_mean"] == pytest.approx(np.mean(values), rel=1e-6)
    assert result["fid_ci_low"] == pytest.approx(full - 1.96 * np.std(values, ddof=1), rel=1e-6)
    assert result["fid_ci_high"] == pytest.approx(full + 1.96 * np.std(values, ddof=1), rel=1e-6)
    assert np.mean(values) > full  # resamples repeat points: more bias, hence the interval centred on the estimate


def test_fid_infinity_recovers_the_closed_form_fid_of_gaussians():
    """Features from N(0, I) (reference, many) and N(mu, s^2 I) (generated): the true FID is
    d (mu^2 + (s - 1)^2). FID on few samples is biased upwards; FID-infinity's 1/N extrapolation removes most of it."""
    from genzoo.metrics.fid import fid_from_features, fid_infinity_from_features

    d, mu, s = 32, 0.3, 1.2
    true = d * (mu**2 + (s - 1) ** 2)
    rng = np.random.default_rng(6)
    real = rng.normal(size=(100_000, d))
    fake = rng.normal(size=(3000, d)) * s + mu
    small = fid_from_features(real, fake[:150])
    fit = fid_infinity_from_features(real, fake, points=15, min_count=150, seed=1)
    assert small - true > 0.5  # the small-sample bias, about d(d+1)/(2N)-ish
    assert abs(fit["fid_infinity"] - true) < 0.25 * (small - true), (fit["fid_infinity"], true, small)
    assert abs(fit["fid_infinity"] - true) < 0.15
    assert fit["slope"] > 0 and len(fit["counts"]) == 15


def test_renyi_on_features_is_zero_for_a_sample_and_grows_with_the_shift():
    from genzoo.metrics.fid import renyi_from_features

    rng = np.random.default_rng(7)
    real = rng.normal(size=(200, 16))
    assert renyi_from_features(real, real)[0] == pytest.approx(0, abs=1e-9)
    values = [renyi_from_features(real, rng.normal(size=(200, 16)) + shift)[0] for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[-1] > 10 * max(values[0], 1e-3)


def test_renyi_on_features_takes_nystrom_above_the_exact_limit_and_says_so(monkeypatch):
    """Large feature sets would need an n x n eigendecomposition per side (50,000: 20 GB each): above the limit
    the metric switches to the Nystrom approximation and records it, below it stays exact."""
    import genzoo.metrics.fid as F
    from genzoo.renyi import median_bandwidth, pooled_divergence

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(200, 8)) + 0.5
    from genzoo.core.errors import GenzooError

    exact, sigma, how = F.renyi_from_features(real, fake)
    assert how == "exact"
    x, y = torch.as_tensor(fake), torch.as_tensor(real)
    assert exact == pytest.approx(float(pooled_divergence(x, y, 0.5, "gaussian", sigma)), rel=1e-12)
    # landmarks below the limit choose Nystrom too (auto)
    assert F.renyi_from_features(real, fake, landmarks=300)[2].startswith("nystrom, 300")
    monkeypatch.setattr(F, "RENYI_EXACT_MAX", 300)  # at the limit: still exact
    assert F.renyi_from_features(real, fake)[2] == "exact"
    monkeypatch.setattr(F, "RENYI_EXACT_MAX", 299)
    monkeypatch.setattr(F, "RENYI_LANDMARKS", 300)
    approx, sigma_sub, how = F.renyi_from_features(real, fake, seed=1)
    assert how.startswith("nystrom, 300 landmarks")
    assert sigma_sub == sigma  # the median over 2,000 drawn vectors is over all of them when there are 500
    # an underestimate, by the margin docs/mbrce.md states for ~half the pooled sample as landmarks
    assert 0.5 * exact < approx < exact, (approx, exact)
    # an explicit landmark count covering every vector is the exact value again
    assert F.renyi_from_features(real, fake, landmarks=500)[2] == "exact"
    # the estimator chosen by name: Lanczos within its stated 2 %, Nystrom below the limit, exact above it
    value, _, how = F.renyi_from_features(real, fake, estimator="lanczos")
    assert how.startswith("lanczos") and abs(value - exact) < 0.02 * exact, (value, exact)
    assert value != exact  # an estimate, not the exact path under another name
    # direction: at alpha = 0.3 a narrow generated sample's divergence from the reference is 34 % above the reverse
    wide, narrow = rng.normal(size=(300, 8)), rng.normal(size=(200, 8)) * 0.4
    xn, yw = torch.as_tensor(narrow), torch.as_tensor(wide)
    s = median_bandwidth(xn, yw)
    forward = float(pooled_divergence(xn, yw, 0.3, "gaussian", s))
    assert abs(float(pooled_divergence(yw, xn, 0.3, "gaussian", s)) - forward) > 0.2 * forward
    assert abs(F.renyi_from_features(wide, narrow, 0.3, estimator="lanczos")[0] - forward) < 0.02 * forward
    for bad, match in (({"landmarks": 50}, "applies to the nystrom estimator"), ({"alpha": 1.5}, "0 < alpha < 1")):
        with pytest.raises(GenzooError, match=match):
            F.renyi_from_features(real, fake, estimator="lanczos", **bad)
    assert F.renyi_from_features(real, fake, estimator="nystrom", landmarks=300)[2].startswith("nystrom, 300")
    assert F.renyi_from_features(real, fake, estimator="exact")[0] == exact
    with pytest.raises(GenzooError, match="estimator must be auto, exact, nystrom or lanczos"):
        F.renyi_from_features(real, fake, estimator="fast")
    for bad in (1, "100", 600.0, True):
        with pytest.raises(GenzooError, match="landmarks must be an integer >= 2"):
            F.renyi_from_features(real, fake, landmarks=bad)
    assert F.renyi_from_features(real, fake, landmarks=np.int64(600))[2] == "exact"


def test_prd():
    from genzoo.metrics.precision_recall import prd_curve, prd_f_scores, prd_from_features

    p_ref, p_eval = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    precision, recall = prd_curve(p_eval, p_ref, num_angles=11)
    lambdas = np.tan(np.linspace(1e-10, math.pi / 2 - 1e-10, 11))
    expected = [sum(min(lam * r, e) for r, e in zip(p_ref, p_eval)) for lam in lambdas]  # alpha(l) = sum min(l P, Q)
    np.testing.assert_allclose(precision, np.clip(expected, 0, 1))
    np.testing.assert_allclose(recall, np.clip(np.array(expected) / lambdas, 0, 1))
    assert precision.max() == pytest.approx(0.5) and recall.max() == pytest.approx(1.0)  # half of Q is off P
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    f8, f1_8 = prd_f_scores(*prd_from_features(a, b, num_clusters=5, num_runs=2))
    assert f8 > 0.9 and f1_8 > 0.9
    f8, f1_8 = prd_f_scores(*prd_from_features(a, b + 100, num_clusters=5, num_runs=2))
    assert f8 < 0.05 and f1_8 < 0.05


def test_parzen_log_likelihood_matches_direct_formula():
    from scipy.special import logsumexp

    from genzoo.metrics.parzen import parzen_log_likelihood

    rng = np.random.default_rng(3)
    x, s = rng.random((37, 12)), rng.random((53, 12))
    sigmas = [0.1, 0.3]
    ours = parzen_log_likelihood(torch.from_numpy(x), torch.from_numpy(s), sigmas, x_chunk=5, sample_chunk=7).numpy()
    for row, sigma in zip(ours, sigmas):
        d2 = ((x[:, None, :] - s[None, :, :]) ** 2).sum(-1)
        direct = logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(len(s)) - 12 * np.log(sigma * np.sqrt(2 * np.pi))
        np.testing.assert_allclose(row, direct, rtol=1e-10)


def test_parzen_metric_cross_validates_sigma(model, trained):
    from genzoo.metrics.evaluate import evaluate
    from genzoo.metrics.parzen import generate_flat, parzen_log_likelihood
    from genzoo.modelfile.folder import model_revision

    opts = {"parzen": {"samples": 300, "count": 100, "validation_count": 50, "sigma_steps": 8}}
    result = evaluate(model, ["parzen"], opts, revision=model_revision(model, trained))["parzen"]
    p = result["protocol"]
    assert p["samples"] == 300 and p["images"] == 100 and p["validation"]["images"] == 50
    assert p["validation"]["split"] == "digits/train" and p["validation"]["indices"] == "1450..1499"
    assert result["sigma"] == p["sigma_grid"][int(np.argmax(p["validation_ll"]))]
    # independently: the test log-likelihood at that sigma, mean and standard error
    from genzoo.core.registry import DATASETS, build

    test, _ = build(DATASETS, {"name": "digits"}, "data", split="test")
    x = test.images[:100].flatten(1).double() / 255
    ll = parzen_log_likelihood(x, generate_flat(model, 300, 0), [result["sigma"]])[0].numpy()
    assert result["log_likelihood"] == pytest.approx(ll.mean(), rel=1e-9)
    assert result["standard_error"] == pytest.approx(ll.std() / 10, rel=1e-9)


def test_parzen_chooses_sigma_on_the_validation_split_when_the_data_has_one(model):
    """Held-out images (MNIST with data.validation=1000) are preferred to the end of the train split."""
    from genzoo.core.errors import GenzooError
    from genzoo.core.registry import DATASETS, build
    from genzoo.metrics.parzen import parzen

    train, _ = build(DATASETS, {"name": "digits"}, "data", split="train")
    test, _ = build(DATASETS, {"name": "digits"}, "data", split="test")
    held_out = type(train)(train.images[:40], train.labels[:40], name="digits/validation")
    asked = []

    def with_validation(name):
        asked.append(name)
        return {"validation": held_out, "train": train}[name]

    def without_validation(name):
        asked.append(name)
        if name == "validation":
            raise GenzooError("no validation split", "set data.validation")
        return train

    opts = dict(samples=100, count=50, validation_count=20, sigma_steps=4)
    p = parzen(model, test, splits=with_validation, **opts)["protocol"]["validation"]
    assert p == {"split": "digits/validation", "images": 20, "indices": "20..39"} and asked == ["validation"]
    asked.clear()
    p = parzen(model, test, splits=without_validation, **opts)["protocol"]["validation"]
    assert p["split"] == "digits/train" and p["indices"] == "1480..1499" and asked == ["validation", "train"]
    asked.clear()
    parzen(model, test, splits=with_validation, validation_split="train", **opts)
    assert asked == ["train"]


# -- the metrics on a trained model ----------------------------------------------------------------------------------
def test_model_fid_equals_cleanfid_on_saved_pngs(fx, model, trained, tmp_path):
    """`fid` on samples == clean-fid's compute_fid on the PNGs `genzoo sample --images-dir` writes."""
    cf = cleanfid_fid()
    from genzoo.core.registry import DATASETS, build
    from genzoo.metrics.evaluate import evaluate
    from genzoo.modelfile.folder import model_revision

    result = evaluate(model, ["fid"], {"fid": {"count": N}}, limit=N, revision=model_revision(model, trained))["fid"]
    run_cli("sample", trained, "-n", N, "--seed", 0, "--out", tmp_path / "g.png", "--images-dir", tmp_path / "gen")
    test, _ = build(DATASETS, {"name": "digits"}, "data", split="test")
    ref_dir = _write_pngs(test.images[:N], tmp_path / "ref")
    score = cf.compute_fid(
        str(tmp_path / "gen"),
        ref_dir,
        mode="clean",
        custom_feat_extractor=_cleanfid_extractor(fx),
        num_workers=0,
        batch_size=64,
        device=torch.device("cpu"),
        verbose=False,
    )
    # clean-fid's scipy sqrtm is inexact on singular covariances (~1e-5 relative here); ours is exact
    assert result["fid"] == pytest.approx(score, rel=1e-4), (result["fid"], score)


def test_every_result_records_its_protocol(fx, model, trained, cache):
    from genzoo.metrics.evaluate import evaluate
    from genzoo.modelfile.folder import model_revision

    names = ["reconstruction", "prior_match", "fid", "kid", "precision_recall", "prd", "parzen"]
    opts = {
        "prd": {"num_clusters": 4, "num_runs": 2},
        "parzen": {"samples": 100, "validation_count": 20},
        "fid": {"source": "reconstructions"},
        "kid": {"source": "interpolations", "subsets": 5},
    }
    results = evaluate(model, names, opts, limit=N, revision=model_revision(model, trained))
    weights = trained / "model" / "model.safetensors"
    from genzoo.core.io import file_sha256

    for name in names:
        p = results[name]["protocol"]
        assert p["metric"] == name and p["split"] == "test" and p["dataset"] == "digits" and p["limit"] == N
        assert p["model"]["step"] == 30 and p["model"]["weights_sha256"] == file_sha256(weights)
        assert "options" in p
    for name in ("fid", "kid", "precision_recall", "prd"):
        p = results[name]["protocol"]
        assert (
            p["mode"] == "clean" and len(p["inception"]["sha256"]) == 64 and len(p["inception"]["layers_sha256"]) == 64
        )
        assert p["reference"]["dataset"] == "digits/test" and p["reference"]["images"] == N and p["images"] == N
        assert p["seed"] == 0
    assert results["fid"]["protocol"]["source"] == "reconstructions"
    assert results["kid"]["protocol"]["source"] == "interpolations"
    assert results["parzen"]["protocol"]["sigma"] == results["parzen"]["sigma"]
    assert 0 <= results["precision_recall"]["precision"] <= 1 and 0 <= results["prd"]["f8"] <= 1
    # reference features were cached in GENZOO_CACHE/fid-stats, not in clean-fid's package folder
    stats = list((cache / "fid-stats").glob(f"digits-test-n{N}-clean-*.npz"))
    assert len(stats) == 1
    with np.load(stats[0]) as f:
        assert f["feats"].shape == (N, 2048) and f["sigma"].shape == (2048, 2048)
    from genzoo.metrics import fid as fid_module

    fid_module._REFERENCE_FEATURES.clear()
    again = evaluate(
        model, ["fid"], {"fid": {"source": "reconstructions"}}, limit=N, revision=model_revision(model, trained)
    )["fid"]
    assert again["protocol"]["reference"]["cached"] is True and again["fid"] == pytest.approx(results["fid"]["fid"])


def test_reference_split_by_name(fx, model, trained):
    from genzoo.metrics.evaluate import evaluate
    from genzoo.modelfile.folder import model_revision

    r = evaluate(
        model,
        ["fid"],
        {"fid": {"reference": "train", "count": N, "reference_count": 6}},
        revision=model_revision(model, trained),
    )["fid"]
    assert r["protocol"]["reference"]["dataset"] == "digits/train" and r["images"] == N and r["reference_images"] == 6


def test_eval_cli_subprocess(fx, trained, tmp_path, cache):
    proc = run_cli(
        "eval",
        trained,
        "--metrics",
        "reconstruction,fid,kid,precision_recall",
        "--limit",
        N,
        "--out",
        tmp_path / "e.json",
        "kid.subsets=10",
        env={"GENZOO_CACHE": str(cache)},
    )
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(result) == {"reconstruction", "fid", "kid", "precision_recall"}
    assert result["fid"]["images"] == N and result["kid"]["protocol"]["subsets"] == 10
    assert "fid.fid" in proc.stdout and "mode clean" in proc.stdout


# -- weights, options and messages ---------------------------------------------------------------------------------
def test_same_weights_in_an_nvlabs_style_file_give_the_same_features(fx, digit_sets, tmp_path):
    """A file laid out like NVlabs' (forward(img, return_features) resizing inside, `.layers`) holding the same
    layers: clean features, layers hash and legacy_tensorflow features agree with the layers-only file."""
    from genzoo.metrics.inception import InceptionFeatures, nv_bilinear

    class NVStyle(torch.nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layers = layers

        def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            x = nv_bilinear(img.to(torch.float32))
            return self.layers((x - 128) / 128).reshape(-1, 2048)

    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(NVStyle(fx.layers)).save(str(path))
    other = InceptionFeatures("clean", str(path))
    assert other.source == "inception option" and other.full is not None
    assert other.layers_sha256 == fx.layers_sha256 and other.file_sha256 != fx.file_sha256
    images = digit_sets[0][:2]
    np.testing.assert_array_equal(other(images), fx(images))
    legacy_full = InceptionFeatures("legacy_tensorflow", str(path))(images)
    legacy_layers = InceptionFeatures("legacy_tensorflow")(images)
    # the file's own forward runs the layers as saved; without it the CPU runs them frozen, batch norms folded
    np.testing.assert_allclose(legacy_full, legacy_layers, rtol=2e-5, atol=1e-5)
    assert np.abs(legacy_layers - fx(images)).max() > 1e-3  # a different resize, different features


def test_the_tensorflow_mode_resize_is_tf1_resize_bilinear():
    """legacy_tensorflow's resize is TF1's `resize_bilinear` (align_corners False, no half-pixel centres): output
    pixel i samples the input at i * in / out, edges clamped. Written out in numpy here; half-pixel centres (torch's
    `interpolate`, TF2) or aligned corners differ from it by up to 163 and 203 grey levels on this noise."""
    from genzoo.metrics.inception import nv_bilinear

    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (2, 3, 28, 20)).astype(np.float32))

    def weights(n_in, n_out):
        src = np.arange(n_out) * n_in / n_out
        lo = np.floor(src).astype(int)
        hi, frac = np.minimum(lo + 1, n_in - 1), src - lo
        m = np.zeros((n_out, n_in))
        np.add.at(m, (np.arange(n_out), lo), 1 - frac)
        np.add.at(m, (np.arange(n_out), hi), frac)
        return m

    expected = np.einsum("oh,nchw,pw->ncop", weights(28, 299), x.numpy().astype(np.float64), weights(20, 299))
    np.testing.assert_allclose(nv_bilinear(x).numpy(), expected, atol=2e-3)


def test_weights_messages(tmp_path, monkeypatch):
    pytest.importorskip("cleanfid", reason="clean-fid is not installed")
    from genzoo.core.errors import GenzooError
    from genzoo.metrics import inception

    monkeypatch.setenv("GENZOO_INCEPTION", str(tmp_path / "nowhere.pt"))
    with pytest.raises(GenzooError, match="GENZOO_INCEPTION.*do not exist"):
        inception.find_weights()
    monkeypatch.delenv("GENZOO_INCEPTION")
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)
    with pytest.raises(GenzooError, match="no Inception weights found"):
        inception.find_weights(download=False)
    with pytest.raises(GenzooError, match="unknown FID mode 'cleen'.*did you mean 'clean'"):
        inception.InceptionFeatures("cleen")
    try:
        import torchvision  # noqa: F401

        has_torchvision = True
    except Exception:
        has_torchvision = False
    if not has_torchvision:
        with pytest.raises(GenzooError, match="legacy_pytorch needs .*torchvision"):
            inception.InceptionFeatures("legacy_pytorch")


def test_bad_metric_options_fail_before_work(trained):
    proc = run_cli("eval", trained, "--metrics", "fid", "fid.mod=clean", check=False)
    assert proc.returncode == 1 and "fid.mod" in proc.stderr and "mode" in proc.stderr
    proc = run_cli("eval", trained, "--metrics", "fid", "kid.count=3", check=False)
    assert proc.returncode == 1 and "not among --metrics" in proc.stderr
    proc = run_cli("eval", trained, "--metrics", "fid", "fid.mode=legacy", check=False)
    assert proc.returncode == 1 and "legacy_tensorflow" in proc.stderr


# -- PPL ---------------------------------------------------------------------------------------------------------
def test_ppl_without_lpips_weights_says_how_to_get_them(trained, tmp_path):
    proc = run_cli(
        "eval",
        trained,
        "--metrics",
        "ppl",
        "ppl.download=false",
        check=False,
        env={"GENZOO_CACHE": str(tmp_path), "GENZOO_LPIPS": ""},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "PPL needs LPIPS weights" in lines[0] and "vgg16.pt" in lines[0] and "GENZOO_LPIPS" in lines[0]


class _LinearDecoder(torch.nn.Module):
    """decode(z) = A z (no squashing), a Gaussian prior: path lengths have a closed form."""

    def __init__(self, dim=3, pixels=4):
        super().__init__()
        from genzoo.priors.gaussian import GaussianPrior

        self.A = torch.nn.Parameter(torch.randn(pixels, dim, generator=torch.Generator().manual_seed(0)))
        self.prior = GaussianPrior(dim)
        self.image_shape = (1, 2, 2)

    def decode(self, z):
        return (z @ self.A.T).view(-1, 1, 2, 2)


class _FlatLPIPS(torch.nn.Module):
    """Stands in for NVlabs' vgg16.pt with the same call: features = the flattened image."""

    def forward(self, img: torch.Tensor, resize_images: bool = False, return_lpips: bool = False) -> torch.Tensor:
        return img.flatten(1)


def test_ppl_protocol_on_a_linear_decoder(tmp_path):
    from genzoo.metrics.ppl import ppl

    path = tmp_path / "vgg16.pt"
    torch.jit.script(_FlatLPIPS()).save(str(path))
    model = _LinearDecoder()
    result = ppl(model, None, samples=300, lpips=str(path), batch_size=64, epsilon=0.1)
    # lerp: the images at t and t + eps differ by eps * A (z1 - z0); features repeat grey 3 times, scaled by 255
    g = torch.Generator().manual_seed(0)
    lengths = []
    for i in range(0, 300, 64):
        b = min(64, 300 - i)
        z = model.prior.sample(2 * b, generator=g)
        torch.rand(b, 1, generator=g)  # t, unused: sampling 'end'
        lengths.append(3 * 255**2 * ((z[b:] - z[:b]) @ model.A.detach().T).pow(2).sum(1).double())
    d = torch.cat(lengths).numpy()
    lo, hi = np.sort(d)[int(np.floor(0.01 * 299))], np.sort(d)[int(np.ceil(0.99 * 299))]
    assert result["ppl"] == pytest.approx(d[(d >= lo) & (d <= hi)].mean(), rel=1e-4)
    assert result["protocol"]["epsilon"] == 0.1 and result["protocol"]["lpips"]["source"] == "lpips option"
    assert len(result["protocol"]["lpips"]["sha256"]) == 64
