"""Tests of genzoo.renyi against an independent numpy/scipy reference, plus properties.

The reference below is written from the definitions in docs/mbrce.md with numpy/scipy (cdist, pdist, eigh,
sqrtm; fractional_matrix_power, the notebook's routine, in test_match_notebook_fractional_matrix_power
because it is slow) and shares no code with the module under test; for the pooled measure it uses the
literal (n_x+n_y)² formula with K^½ = sqrtm(K) and pseudo-powers of the singular K^½ D K^½, not the
module's reduced one."""

import ast
import functools
import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest
import scipy.linalg as sla
import torch
from scipy.spatial.distance import cdist, pdist
from torch.autograd import gradcheck

from tests.helpers.recipes import ROOT

RENYI_DIR = ROOT / "genzoo" / "renyi"


def load_by_path(folder: pathlib.Path, name: str):
    """Import the package in `folder` as `name`, without genzoo (its modules import each other relatively)."""
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the relative imports resolve through it
    spec.loader.exec_module(module)
    return module


try:
    from genzoo import renyi as R
except ImportError:  # the package is standalone: load it by path if genzoo cannot import yet
    R = load_by_path(RENYI_DIR, "renyi_standalone")
spectral, kernels = R.spectral, R.kernels  # private helpers under test, where they are defined

F64 = torch.float64
TOL = 1e-8


# ----------------------------------------------------------------------------------------------------
# independent reference (numpy / scipy)
# ----------------------------------------------------------------------------------------------------
def ref_sigma(sigma, *arrays):
    if sigma == "median":
        return float(np.median(pdist(np.vstack(arrays))))
    return float(sigma)


def ref_gram(a, b, kernel, s):
    dist = cdist(a, b)
    return np.exp(-(dist**2) / (2 * s * s)) if kernel == "gaussian" else np.exp(-dist / s)


def ref_norm_gram(a, kernel, s):
    k = ref_gram(a, a, kernel, s)
    dg = np.sqrt(np.diag(k))
    return k / np.outer(dg, dg) / len(a)


def fmp(m, p):
    """Power of a symmetric positive-definite matrix by scipy.linalg.eigh (fast; see USE_SCIPY_FMP)."""
    if USE_SCIPY_FMP:
        return np.real(sla.fractional_matrix_power(m, p))
    w, v = sla.eigh(0.5 * (m + m.T))
    assert w.min() > 0, "the reference data must be positive definite"
    return (v * w**p) @ v.T


USE_SCIPY_FMP = False  # the notebook's fractional_matrix_power: ~0.05-0.3 s per call, used in one test


def psd_pseudo_power(m, p, rel=1e-10):
    """Power of a PSD matrix with exact zeros (eigenvalues below rel*max are the structural null space)."""
    w, v = sla.eigh(0.5 * (m + m.T))
    keep = w > rel * w.max()
    return (v[:, keep] * w[keep] ** p) @ v[:, keep].T


def ref_entropy_of(a, alpha):
    return math.log(np.trace(fmp(a, alpha))) / (1 - alpha)


def ref_entropy(x, alpha, kernel, sigma):
    return ref_entropy_of(ref_norm_gram(x, kernel, ref_sigma(sigma, x)), alpha)


def ref_joint_mats(x, y, kernel, sigma):
    a = ref_norm_gram(x, kernel, ref_sigma(sigma, x))
    b = ref_norm_gram(y, kernel, ref_sigma(sigma, y))
    ab = a * b
    return a, b, ab / np.trace(ab)


def ref_joint(x, y, alpha, kernel, sigma):
    return ref_entropy_of(ref_joint_mats(x, y, kernel, sigma)[2], alpha)


def ref_mi(x, y, alpha, kernel, sigma):
    a, b, ab = ref_joint_mats(x, y, kernel, sigma)
    return ref_entropy_of(a, alpha) + ref_entropy_of(b, alpha) - ref_entropy_of(ab, alpha)


def ref_bipartite(x, y, alpha, kernel, sigma):
    s = ref_sigma(sigma, x, y)
    k1, k2 = ref_norm_gram(x, kernel, s), ref_norm_gram(y, kernel, s)
    t = np.trace(fmp(k1, alpha) @ fmp(k2, 1 - alpha))
    return (math.log(t) - math.log(np.trace(k1))) / (alpha - 1)


def ref_mirrored(x, y, alpha, kernel, sigma):
    s = ref_sigma(sigma, x, y)
    k1, k2 = ref_norm_gram(x, kernel, s), ref_norm_gram(y, kernel, s)
    p = fmp(k2, (1 - alpha) / (2 * alpha))
    t = np.trace(fmp(p @ k1 @ p, alpha))
    return (math.log(t) - math.log(np.trace(k1))) / (alpha - 1)


def ref_pooled(x, y, alpha, kernel, sigma, mix=0.0):
    s = ref_sigma(sigma, x, y)
    z = np.vstack([x, y])
    nx, ny, m = len(x), len(y), len(x) + len(y)
    k = ref_gram(z, z, kernel, s)
    kh = np.real(sla.sqrtm(k))
    dx = np.r_[np.ones(nx) / nx, np.zeros(ny)]
    dy = (1 - mix) * np.r_[np.zeros(nx), np.ones(ny) / ny] + mix / m
    cx, cy = kh @ np.diag(dx) @ kh, kh @ np.diag(dy) @ kh
    cy_pow = psd_pseudo_power(cy, 1 - alpha) if mix == 0 else fmp(cy, 1 - alpha)
    t = np.trace(psd_pseudo_power(cx, alpha) @ cy_pow)
    return (math.log(t) - math.log(np.trace(cx))) / (alpha - 1)


def ref_cross(x, y, alpha, kernel, sigma, measure, mix=0.0):
    s = ref_sigma(sigma, x, y)
    div = {
        "pooled": lambda: ref_pooled(x, y, alpha, kernel, s, mix),
        "bipartite": lambda: ref_bipartite(x, y, alpha, kernel, s),
        "mirrored": lambda: ref_mirrored(x, y, alpha, kernel, s),
    }[measure]()
    return ref_entropy(x, alpha, kernel, s) + div


# ----------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------
_rng = np.random.default_rng(1234)
X = _rng.normal(size=(10, 6))
Y = _rng.normal(size=(10, 6)) + 0.4  # paired with X (same n)
YP = _rng.normal(size=(7, 6)) + 0.4  # pooled: a different number of rows
W = _rng.normal(size=(10, 3))  # a second variable for joint entropy / MI


def t(a, requires_grad=False):
    return torch.tensor(a, dtype=F64, requires_grad=requires_grad)


def close(got, want, tol=TOL):
    got = float(got.detach()) if isinstance(got, torch.Tensor) else float(got)
    assert math.isfinite(got), got
    assert abs(got - want) <= tol * max(1.0, abs(want)), (got, want, got - want)


KERNELS = ["gaussian", "laplacian"]
SIGMAS = [1.5, "median"]
ALPHAS = [0.5, 0.99, 1.5, 2, 3]


# ----------------------------------------------------------------------------------------------------
# agreement with the reference
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_entropies_match_reference(kernel, sigma, alpha):
    close(R.renyi_entropy(t(X), alpha, kernel, sigma), ref_entropy(X, alpha, kernel, sigma))
    close(R.joint_entropy(t(X), t(W), alpha, kernel, sigma), ref_joint(X, W, alpha, kernel, sigma))
    close(R.mutual_information(t(X), t(W), alpha, kernel, sigma), ref_mi(X, W, alpha, kernel, sigma))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_paired_divergences_match_reference(kernel, sigma, alpha):
    close(R.bipartite_divergence(t(X), t(Y), alpha, kernel, sigma), ref_bipartite(X, Y, alpha, kernel, sigma))
    close(R.mirrored_divergence(t(X), t(Y), alpha, kernel, sigma), ref_mirrored(X, Y, alpha, kernel, sigma))
    for measure in ("bipartite", "mirrored"):
        close(
            R.cross_entropy(t(X), t(Y), alpha, kernel, sigma, measure),
            ref_cross(X, Y, alpha, kernel, sigma, measure),
        )


POOLED_CASES = [(0.3, 0.0), (0.5, 0.0), (0.99, 0.0), (0.5, 0.2), (1.5, 0.1), (2, 0.1), (3, 0.3)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("alpha,mix", POOLED_CASES)
def test_pooled_matches_reference(kernel, sigma, alpha, mix):
    want = ref_pooled(X, YP, alpha, kernel, sigma, mix)
    close(R.pooled_divergence(t(X), t(YP), alpha, kernel, sigma, mix=mix), want)
    close(R.pooled_divergence(t(X), t(YP), alpha, kernel, sigma, mix=mix, fast_path=False), want)
    close(R.divergence(t(X), t(YP), alpha, kernel, sigma, "pooled", mix=mix), want)
    close(
        R.cross_entropy(t(X), t(YP), alpha, kernel, sigma, "pooled", mix=mix),
        ref_cross(X, YP, alpha, kernel, sigma, "pooled", mix),
    )


@pytest.mark.parametrize("alpha", [0.5, 1.5])
def test_match_notebook_fractional_matrix_power(alpha, monkeypatch):
    """The same references computed with scipy.linalg.fractional_matrix_power, as the notebook does."""
    monkeypatch.setattr(sys.modules[__name__], "USE_SCIPY_FMP", True)
    close(R.renyi_entropy(t(X), alpha, "laplacian", 1.0), ref_entropy(X, alpha, "laplacian", 1.0))
    close(R.bipartite_divergence(t(X), t(Y), alpha, "gaussian", 1.5), ref_bipartite(X, Y, alpha, "gaussian", 1.5))
    close(R.mirrored_divergence(t(X), t(Y), alpha, "gaussian", 1.5), ref_mirrored(X, Y, alpha, "gaussian", 1.5))
    mix = 0.0 if alpha < 1 else 0.2
    close(
        R.pooled_divergence(t(X), t(YP), alpha, "laplacian", 1.0, mix=mix),
        ref_pooled(X, YP, alpha, "laplacian", 1.0, mix),
    )


def test_gram_median_and_normalisation_match_reference():
    for kernel in KERNELS:
        np.testing.assert_allclose(
            R.gram_matrix(t(X), t(Y), kernel, 0.7).numpy(), ref_gram(X, Y, kernel, 0.7), atol=1e-13
        )
        a = R.normalized_gram(t(X), kernel, 0.7)
        np.testing.assert_allclose(a.numpy(), ref_norm_gram(X, kernel, 0.7), atol=1e-13)
        close(torch.trace(a), 1.0, 1e-14)
    close(R.median_bandwidth(t(X)), float(np.median(pdist(X))), 1e-13)  # 45 pairs: odd count
    close(R.median_bandwidth(t(X), t(YP)), float(np.median(pdist(np.vstack([X, YP])))), 1e-13)  # 136: even
    close(R.median_bandwidth(t(X[:5])), float(np.median(pdist(X[:5]))), 1e-13)  # 10 pairs: even
    xg = t(X, requires_grad=True)
    assert not R.median_bandwidth(xg).requires_grad  # detached
    same = torch.ones(6, 3, dtype=F64)
    assert float(R.median_bandwidth(same)) == 1.0  # degenerate sample falls back to 1
    half = torch.cat([torch.zeros(6, 2), torch.eye(2)]).to(F64)  # most pairs coincide: mean distance
    close(R.median_bandwidth(half), float(pdist(half.numpy()).mean()), 1e-13)


# ----------------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("alpha", [0.5, 0.99, 1.5, 2.0, 3.0])
def test_divergence_of_a_sample_with_itself_is_zero(kernel, alpha):
    x = t(X)
    assert abs(float(R.bipartite_divergence(x, x, alpha, kernel, "median"))) < 1e-10
    assert abs(float(R.mirrored_divergence(x, x, alpha, kernel, "median"))) < 1e-10
    mix = 0.0 if alpha < 1 else 0.25
    # the pooled Gram matrix of [x; x] is singular (every row twice): its null space must be dropped,
    # not clamped, or round-off times eps^-alpha decides the value
    for fast in (True, False):
        assert abs(float(R.pooled_divergence(x, x, alpha, kernel, "median", mix=mix, fast_path=fast))) < 1e-10
    # and the cross-entropy of a sample with itself is its entropy
    h = float(R.renyi_entropy(x, alpha, kernel, 1.0))
    for measure in R.MEASURES:
        close(R.cross_entropy(x, x, alpha, kernel, 1.0, measure, mix=mix if measure == "pooled" else 0.0), h, 1e-10)


def test_divergences_are_positive_for_different_samples():
    for alpha in (0.5, 2.0):
        assert float(R.bipartite_divergence(t(X), t(Y), alpha)) > 1e-3
        assert float(R.mirrored_divergence(t(X), t(Y), alpha)) > 1e-3
    assert float(R.pooled_divergence(t(X), t(YP), 0.5)) > 1e-2
    assert float(R.pooled_divergence(t(X), t(YP), 1.5, mix=0.1)) > 1e-2


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("alpha", [0.5, 2.0, 3.0])
def test_entropy_extremes(kernel, alpha):
    n = 9
    same = torch.randn(1, 4, dtype=F64).repeat(n, 1)
    assert abs(float(R.renyi_entropy(same, alpha, kernel, 1.0))) < 1e-8
    assert abs(float(R.renyi_entropy(same, alpha, kernel, 1.0, fast_path=False))) < 1e-8
    far = 1e3 * torch.eye(n, dtype=F64)
    close(R.renyi_entropy(far, alpha, kernel, 1.0), math.log(n), 1e-12)
    close(R.renyi_entropy(far, alpha, kernel, 1.0, fast_path=False), math.log(n), 1e-12)
    # entropy lies between the two extremes for generic data
    h = float(R.renyi_entropy(t(X), alpha, kernel, "median"))
    assert 0.05 < h < math.log(len(X)) - 0.05


def test_mutual_information_properties():
    x = t(X)
    # I(X; const) = 0 and I(X; X) > 0
    const = torch.zeros(len(X), 2, dtype=F64)
    assert abs(float(R.mutual_information(x, const, 0.5, "gaussian", 1.0))) < 1e-8
    assert float(R.mutual_information(x, x, 0.5, "gaussian", 1.0)) > 0.1
    # joint entropy with a constant variable is the marginal entropy
    close(R.joint_entropy(x, const, 2, "gaussian", 1.0), float(R.renyi_entropy(x, 2, "gaussian", 1.0)), 1e-12)


def test_pooled_is_row_order_invariant_bipartite_is_not():
    g = torch.Generator().manual_seed(0)
    x, y, yp = t(X), t(Y), t(YP)
    px, py = torch.randperm(len(X), generator=g), torch.randperm(len(YP), generator=g)
    for alpha, mix in [(0.5, 0.0), (0.9, 0.0), (1.5, 0.2)]:
        base = float(R.pooled_divergence(x, yp, alpha, "gaussian", "median", mix=mix))
        close(R.pooled_divergence(x[px], yp, alpha, "gaussian", "median", mix=mix), base, 1e-11)
        close(R.pooled_divergence(x, yp[py], alpha, "gaussian", "median", mix=mix), base, 1e-11)
        close(R.pooled_divergence(x[px], yp[py], alpha, "gaussian", "median", mix=mix), base, 1e-11)
    # docs/mbrce.md: the published bipartite form pairs rows of x and y, so permuting y alone
    # changes it (the mirrored form too); permuting both together does not.
    perm = torch.randperm(len(Y), generator=g)
    for alpha in (0.5, 0.99, 2.0):
        b0 = float(R.bipartite_divergence(x, y, alpha, "laplacian", 1.0))
        b1 = float(R.bipartite_divergence(x, y[perm], alpha, "laplacian", 1.0))
        assert abs(b1 - b0) > 1e-3 * abs(b0), (alpha, b0, b1)
        close(R.bipartite_divergence(x[perm], y[perm], alpha, "laplacian", 1.0), b0, 1e-11)
        m0 = float(R.mirrored_divergence(x, y, alpha, "laplacian", 1.0))
        assert abs(float(R.mirrored_divergence(x, y[perm], alpha, "laplacian", 1.0)) - m0) > 1e-4 * abs(m0)


def test_paired_measures_are_blind_to_translation_pooled_is_not():
    """The bipartite/mirrored forms only compare the two samples' own Gram matrices, so (with a fixed σ)
    shifting y by any vector leaves them unchanged; the pooled form sees it."""
    x, y = t(X), t(Y)
    shift = torch.full((1, X.shape[1]), 3.0, dtype=F64)
    for fn in (R.bipartite_divergence, R.mirrored_divergence):
        close(fn(x, y + shift, 0.5, "gaussian", 1.5), float(fn(x, y, 0.5, "gaussian", 1.5)), 1e-10)
    assert float(R.pooled_divergence(x, y + shift, 0.5, "gaussian", 1.5)) > 2 * float(
        R.pooled_divergence(x, y, 0.5, "gaussian", 1.5)
    )


# ----------------------------------------------------------------------------------------------------
# the alpha >= 1 regularisation of the pooled measure (mix)
# ----------------------------------------------------------------------------------------------------
def test_pooled_requires_alpha_below_one_or_mix():
    with pytest.raises(ValueError, match="mix"):
        R.pooled_divergence(t(X), t(YP), 1.5)
    with pytest.raises(ValueError, match="mix"):
        R.cross_entropy(t(X), t(YP), 2, measure="pooled")
    with pytest.raises(ValueError, match="mix"):
        R.RenyiDivergence(alpha=2.0)
    for bad in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="mix"):
            R.pooled_divergence(t(X), t(YP), 0.5, mix=bad)
    with pytest.raises(ValueError, match="pooled"):
        R.divergence(t(X), t(Y), 0.5, measure="bipartite", mix=0.1)


def test_mix_is_finite_bounded_and_reduces_to_plain_estimator():
    x, y = t(X), t(YP)
    nx, m = len(X), len(X) + len(YP)
    for mix in (0.05, 0.3, 1.0):
        bound = math.log(m / (mix * nx))
        for alpha in (1.2, 1.5, 1.9, 2.0):
            v = float(R.pooled_divergence(x, y, alpha, "laplacian", 1.0, mix=mix))
            assert 0.0 < v <= bound + 1e-9, (mix, alpha, v, bound)
    # mix -> 0 recovers the plain estimator for alpha < 1 (continuous, at rate ~ mix^(1-alpha))
    plain = float(R.pooled_divergence(x, y, 0.5, "gaussian", 1.5))
    gaps = [
        abs(float(R.pooled_divergence(x, y, 0.5, "gaussian", 1.5, mix=mx)) - plain) for mx in (0.3, 1e-2, 1e-4, 1e-6)
    ]
    assert gaps[0] > 1e-2 and all(a > 3 * b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-2, gaps


def test_mix_alpha_two_is_degenerate():
    """Documented limitation: with a full-rank pooled Gram matrix, tr(C_X² C_Y'^-1) = Σ_i p_i²/q_i, so
    at α = 2 the mixed divergence is log((n_x+n_y)/(mix n_x)) whatever the data: use 1 < α < 2."""
    for y in (t(YP), t(YP) + 2.0, 3.0 * t(YP)):
        v = float(R.pooled_divergence(t(X), y, 2.0, "laplacian", 1.0, mix=0.2))
        close(v, math.log(17 / (0.2 * 10)), 1e-9)
    x = t(X, requires_grad=True)
    (gx,) = torch.autograd.grad(R.pooled_divergence(x, t(YP), 2.0, "laplacian", 1.0, mix=0.2), x)
    assert gx.abs().max() < 1e-8


def test_pooled_and_mix_are_informative_about_distributions():
    """Independent samples from the same distribution score lower than from a shifted or rescaled one."""
    g = torch.Generator().manual_seed(3)
    n, d = 64, 4
    x = torch.randn(n, d, generator=g, dtype=F64)
    same = torch.randn(n, d, generator=g, dtype=F64)
    shifted = torch.randn(n, d, generator=g, dtype=F64) + 1.0
    scaled = 2.0 * torch.randn(n, d, generator=g, dtype=F64)
    for alpha, mix in [(0.5, 0.0), (0.9, 0.0), (1.5, 0.1)]:
        v = [float(R.pooled_divergence(x, y, alpha, "gaussian", "median", mix=mix)) for y in (same, shifted, scaled)]
        assert v[0] < 0.7 * v[1] and v[0] < 0.7 * v[2], (alpha, mix, v)


# ----------------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------------
def _small(seed, n=5, d=2, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=F64) + shift).requires_grad_()


GRAD_FNS = {
    "entropy": lambda a, k, f: lambda x, y: R.renyi_entropy(x, a, k, 1.0, fast_path=f),
    "joint": lambda a, k, f: lambda x, y: R.joint_entropy(x, y, a, k, 1.0, fast_path=f),
    "mi": lambda a, k, f: lambda x, y: R.mutual_information(x, y, a, k, 1.0, fast_path=f),
    "bipartite": lambda a, k, f: lambda x, y: R.bipartite_divergence(x, y, a, k, 1.0, fast_path=f),
    "mirrored": lambda a, k, f: lambda x, y: R.mirrored_divergence(x, y, a, k, 1.0, fast_path=f),
    "pooled": lambda a, k, f: (
        lambda x, y: R.pooled_divergence(x, y[:-1], a, k, 1.0, mix=0.0 if a < 1 else 0.2, fast_path=f)
    ),
    "cross": lambda a, k, f: (
        lambda x, y: R.cross_entropy(x, y[:-1], a, k, 1.0, "pooled", mix=0.0 if a < 1 else 0.2, fast_path=f)
    ),
}


GRAD_CASES = [(name, a) for name in GRAD_FNS for a in (0.5, 1.5, 2.0, 3.0) if name not in ("pooled", "cross")]
# pooled: alpha >= 1 uses mix=0.2; alpha = 2 is the degenerate constant (see test_mix_alpha_two_is_degenerate)
# and alpha > 2 is ill-conditioned with mix, so the recommended range 1 < alpha < 2 is checked instead
GRAD_CASES += [(name, a) for name in ("pooled", "cross") for a in (0.3, 0.5, 0.9, 1.5, 1.9)]


@pytest.mark.parametrize("name,alpha", GRAD_CASES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_gradcheck(name, kernel, alpha):
    x, y = _small(1), _small(2, shift=0.3)
    for fast in (True, False):
        assert gradcheck(GRAD_FNS[name](alpha, kernel, fast), (x, y), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("alpha", [0.5, 0.99, 2.0, 3.0])
def test_gradients_finite_with_duplicated_rows(kernel, alpha):
    g = torch.Generator().manual_seed(7)
    base = torch.randn(10, 3, generator=g, dtype=F64)
    base[4] = base[1]
    base[5] = base[1]
    base[8] = base[2]  # three copies of one row, two of another
    other = torch.randn(10, 3, generator=g, dtype=F64) + 0.2
    other[3] = other[0]
    same = base[:1].repeat(10, 1)  # every row identical
    mix = 0.0 if alpha < 1 else 0.2
    for xs in (base, same):
        for fn in (
            lambda x: R.renyi_entropy(x, alpha, kernel, "median"),
            lambda x: R.joint_entropy(x, other, alpha, kernel, "median"),
            lambda x: R.mutual_information(x, other, alpha, kernel, "median"),
            lambda x: R.bipartite_divergence(x, other, alpha, kernel, "median"),
            lambda x: R.mirrored_divergence(x, other, alpha, kernel, "median"),
            lambda x: R.pooled_divergence(x, other, alpha, kernel, "median", mix=mix),
            lambda x: R.pooled_divergence(other, x, alpha, kernel, "median", mix=mix),
            lambda x: R.pooled_divergence(x, x.detach(), alpha, kernel, "median", mix=mix),
            lambda x: R.cross_entropy(x, other, alpha, kernel, "median", "pooled", mix=mix),
        ):
            x = xs.clone().requires_grad_()
            v = fn(x)
            assert torch.isfinite(v)
            (gx,) = torch.autograd.grad(v, x)
            assert torch.isfinite(gx).all()
            assert gx.abs().max() < 1e6


def test_gradient_without_target_gradient_is_the_same():
    """The backward skips the target's branch when y carries no gradient (a prior sample); x's gradient
    must not change."""
    g = torch.Generator().manual_seed(9)
    x = torch.randn(12, 4, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(12, 4, generator=g, dtype=F64) + 0.3
    for fn in (
        lambda a, b: R.bipartite_divergence(a, b, 0.5, "gaussian", "median"),
        lambda a, b: R.bipartite_divergence(a, b, 2, "laplacian", 1.0),
        lambda a, b: R.mirrored_divergence(a, b, 1.5, "gaussian", "median"),
        lambda a, b: R.pooled_divergence(a, b, 0.5, "gaussian", "median"),
        lambda a, b: R.pooled_divergence(a, b, 1.5, "laplacian", 1.0, mix=0.1),
        lambda a, b: R.pooled_divergence(a, b, 2, "gaussian", "median", mix=0.1),
    ):
        (g_alone,) = torch.autograd.grad(fn(x, y), x)
        yg = y.clone().requires_grad_()
        g_both, g_y = torch.autograd.grad(fn(x, yg), (x, yg))
        torch.testing.assert_close(g_alone, g_both, rtol=1e-12, atol=1e-15)
        assert g_y.abs().sum() > 0


def test_gradient_at_repeated_eigenvalues_matches_finite_differences():
    """Equidistant points give a Gram matrix with one eigenvalue of multiplicity n-1, where autograd
    through torch.linalg.eigh returns NaN; the Loewner-matrix backward matches finite differences."""
    n = 6
    x0 = torch.eye(n, dtype=F64)
    y = _small(5, n=n, d=n).detach()
    fns = [
        lambda x: R.bipartite_divergence(x, y, 0.5, "gaussian", 1.0),
        lambda x: R.mirrored_divergence(x, y, 1.5, "gaussian", 1.0),
        lambda x: R.pooled_divergence(x, y, 0.5, "gaussian", 1.0),
        lambda x: R.pooled_divergence(y, x, 0.7, "laplacian", 1.0),
        lambda x: R.renyi_entropy(x, 0.5, "gaussian", 1.0),
    ]
    h = 1e-6
    for fn in fns:
        x = x0.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(x), x)
        fd = torch.zeros_like(x0)
        for i in range(n):
            for j in range(n):
                e = torch.zeros_like(x0)
                e[i, j] = h
                fd[i, j] = (fn(x0 + e) - fn(x0 - e)) / (2 * h)
        assert torch.isfinite(gx).all()
        assert (gx - fd).abs().max() < 1e-7, (gx - fd).abs().max()


def _spectrum_matrix(lams, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(lams), len(lams), generator=g, dtype=F64))
    return (q * torch.tensor(lams, dtype=F64)) @ q.T


# eigenvalues in every region of the regularised power with eps = 1e-2: below 0, in (0, eps), in
# (eps, 2 eps) (the pseudo-inverse smoothstep), above, and repeated ones
SPECTRUM = [-3e-3, 4e-3, 4e-3, 1.3e-2, 1.7e-2, 0.2, 0.2, 0.45]


@pytest.mark.parametrize("p", [-2.0, -0.5, 0.3, 0.5, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("trunc", [False, True])
def test_spectral_functions_gradcheck_in_every_region(p, trunc):
    """The custom autograd functions against finite differences, on matrices whose spectra cross the
    clamp / quadratic / smoothstep regions (eps = 1e-2 so that finite differences resolve them)."""
    eps = 1e-2
    s1 = _spectrum_matrix(SPECTRUM, 0).requires_grad_()
    s2 = _spectrum_matrix(SPECTRUM[::-1], 1).requires_grad_()
    b = torch.randn(8, 8, generator=torch.Generator().manual_seed(2), dtype=F64).requires_grad_()
    f = _spectrum_matrix([0.0, 0.1, 0.2, 0.3, 0.3, 0.5, 0.7, 1.0], 3).requires_grad_()
    sym = spectral._sym  # the functions read symmetric matrices from their lower triangle: perturb symmetrically
    fns = [
        (lambda s: spectral._BilinearTrace.apply(sym(s), None, s2, p, 1.0 - p, eps, trunc), (s1,)),
        (lambda s, bb, t: spectral._BilinearTrace.apply(sym(s), bb, sym(t), p, -0.7, eps, trunc), (s1, b, s2)),
        # the scale factors the Gram blocks use instead of a division pass
        (
            lambda s, bb, t: spectral._BilinearTrace.apply(sym(s), bb, sym(t), p, -0.7, eps, trunc, 0.5, 0.8, 2.0),
            (s1, b, s2),
        ),
        (lambda ff, bb, t: spectral._TraceSandwichPow.apply(ff, bb, sym(t), p, eps, trunc), (f, b, s2)),
    ]
    if not trunc:
        fns += [
            (lambda s: spectral._TracePow.apply(sym(s), p, eps), (s1,)),
            (lambda s: (spectral._MatPow.apply(sym(s), p, eps) * s2).sum(), (s1,)),
        ]
    for fn, inputs in fns:
        # central differences carry ~u·|f|/h of round-off (|f| reaches 1e5 for p = -2): atol scales with |f|
        atol = max(1e-6, 1e-8 * float(fn(*inputs).detach().abs()))
        assert gradcheck(fn, inputs, eps=1e-7, atol=atol, rtol=1e-5)


def test_regularised_power_shape():
    lam = torch.tensor([-1e-3, 0.0, 2.5e-13, 5e-13, 1e-12, 1e-12 * (1 + 1e-9), 3e-12, 0.1], dtype=F64)
    for p in (0.3, 0.5, 0.9):
        g, dg = spectral._g(lam, p, 1e-12)
        assert g[0] == 0 and g[1] == 0  # zero eigenvalues contribute nothing
        close(g[4], 1e-12**p, 1e-12)  # continuous at eps ...
        close(dg[4] / (p * 1e-12 ** (p - 1)), 1.0, 1e-6)  # ... with a continuous derivative
        close(dg[2] / 1e-12 ** (p - 1), (2 - p) + 2 * (p - 1) * 0.25, 1e-12)  # the quadratic below eps
        assert torch.all(g[1:].diff() > 0) and torch.all(dg[1:] <= max(p, 2 - p) * 1e-12 ** (p - 1) * (1 + 1e-12))
        torch.testing.assert_close(g[-2:], lam[-2:] ** p, rtol=1e-14, atol=0)
    g, dg = spectral._g(lam, -1.5, 1e-12, trunc=True)  # pseudo-inverse: dropped below eps, exact above 2 eps
    assert torch.all(g[:5] == 0) and torch.all(dg[:5] == 0)
    torch.testing.assert_close(g[-2:], lam[-2:] ** -1.5, rtol=1e-14, atol=0)
    g, dg = spectral._g(lam, -1.5, 1e-12)  # clamp
    torch.testing.assert_close(g[:5], torch.full((5,), 1e-12**-1.5, dtype=F64), rtol=1e-14, atol=0)


def test_laplacian_gram_gradient_at_zero_distance():
    x = torch.tensor([[0.0, 1.0], [0.0, 1.0], [2.0, 0.5]], dtype=F64, requires_grad=True)
    k = R.gram_matrix(x, x, "laplacian", 1.0)
    k.sum().backward()
    assert torch.isfinite(x.grad).all()
    x.grad = None
    R.gram_matrix(x, None, "laplacian", 1.0).sum().backward()
    assert torch.isfinite(x.grad).all()


def _blocks(a, b, s, cross):
    return tuple(k for k in kernels._GaussianBlocks.apply(a, b, s, cross) if k is not None)


def test_fused_gaussian_blocks_against_autograd_of_the_plain_formula():
    """_GaussianBlocks (the training path's Gram blocks, with a hand-written backward) against exp(-‖a-b‖²/(2σ²))
    through autograd, for every upstream gradient (gradcheck: the full Jacobian, so non-symmetric gradients of the
    diagonal blocks too), batched, with and without the cross block; the median σ equals median_bandwidth's."""

    def plain(a, b, s):
        return torch.exp(-((a[..., :, None, :] - b[..., None, :, :]) ** 2).sum(-1) / (2 * s * s))

    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 6, 3, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(2, 4, 3, generator=g, dtype=F64, requires_grad=True)
    s = torch.tensor([[[0.8]], [[1.7]]], dtype=F64)
    for cross in (True, False):
        kxx, kxy, kyy = kernels._GaussianBlocks.apply(x, y, s, cross)
        torch.testing.assert_close(kxx, plain(x, x, s), rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(kyy, plain(y, y, s), rtol=1e-13, atol=1e-15)
        assert (kxy is None) != cross
        if cross:
            torch.testing.assert_close(kxy, plain(x, y, s), rtol=1e-13, atol=1e-15)
        assert gradcheck(functools.partial(_blocks, s=s, cross=cross), (x, y), atol=1e-8, rtol=1e-6)
    # y without gradient: its block is outside the graph, x's gradient unchanged
    yd = y.detach()
    kxx, kxy, kyy = kernels._GaussianBlocks.apply(x, yd, s, True)
    assert kxx.requires_grad and kxy.requires_grad and not kyy.requires_grad
    (gx,) = torch.autograd.grad((kxx * 1.3).sum() + (kxy * 0.7).sum(), x)
    (want,) = torch.autograd.grad((plain(x, x, s) * 1.3).sum() + (plain(x, yd, s) * 0.7).sum(), x)
    torch.testing.assert_close(gx, want, rtol=1e-12, atol=1e-14)
    # the median bandwidth of the pooled sample
    kxx, _, _ = kernels._GaussianBlocks.apply(x[0], y[0], None, False)
    torch.testing.assert_close(kxx, plain(x[0], x[0], R.median_bandwidth(x[0], y[0])), rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------------
ALL_FNS = [
    lambda a, **k: R.renyi_entropy(t(X), a, **k),
    lambda a, **k: R.joint_entropy(t(X), t(W), a, **k),
    lambda a, **k: R.mutual_information(t(X), t(W), a, **k),
    lambda a, **k: R.bipartite_divergence(t(X), t(Y), a, **k),
    lambda a, **k: R.mirrored_divergence(t(X), t(Y), a, **k),
    lambda a, **k: R.pooled_divergence(t(X), t(YP), a, **k),
    lambda a, **k: R.cross_entropy(t(X), t(YP), a, **k),
    lambda a, **k: R.RenyiDivergence(alpha=a, **k),
]


@pytest.mark.parametrize("fn", ALL_FNS)
def test_alpha_validation(fn):
    for bad in (0, 0.0, -0.5, float("nan"), float("inf"), "0.5", None, True):
        with pytest.raises(ValueError, match="alpha"):
            fn(bad)
    for one in (1, 1.0, torch.tensor(1.0)):
        with pytest.raises(ValueError, match="alpha=0.99"):
            fn(one)
    with pytest.raises(ValueError, match="eps"):
        fn(0.5, eps=0.0)
    with pytest.raises(ValueError, match="kernel"):
        fn(0.5, kernel="rbf")


def test_input_validation():
    bad = t(X).clone()
    bad[2, 1] = float("nan")
    for fn in (
        lambda: R.renyi_entropy(bad, 0.5),
        lambda: R.pooled_divergence(t(X), bad, 0.5),
        lambda: R.bipartite_divergence(bad, t(Y), 0.5),
        lambda: R.gram_matrix(bad),
        lambda: R.median_bandwidth(bad),
    ):
        with pytest.raises(ValueError, match="non-finite"):
            fn()
    inf = t(X).clone()
    inf[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        R.renyi_entropy(inf, 2)
    with pytest.raises(ValueError, match="shape"):
        R.renyi_entropy(torch.ones(5, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="pooled_divergence"):
        R.bipartite_divergence(t(X), t(YP), 0.5)  # different n: points to the pooled measure
    with pytest.raises(ValueError, match="same number of rows"):
        R.mirrored_divergence(t(X), t(YP), 0.5)
    with pytest.raises(ValueError, match="columns"):
        R.pooled_divergence(t(X), t(W), 0.5)
    for sigma in (0.0, -1.0, float("nan"), "mean", torch.tensor(-1.0)):
        with pytest.raises(ValueError, match="sigma"):
            R.renyi_entropy(t(X), 0.5, "gaussian", sigma)
    with pytest.raises(ValueError, match="measure"):
        R.cross_entropy(t(X), t(Y), 0.5, measure="tripartite")
    with pytest.raises(ValueError, match="measure"):
        R.RenyiDivergence(measure="kl")


# ----------------------------------------------------------------------------------------------------
# fast paths, batching, dtype, module
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("alpha", [2, 3, 4])
def test_integer_alpha_fast_path_equals_eigen_path(kernel, alpha, monkeypatch):
    x, y, yp, w = t(X), t(Y), t(YP), t(W)
    cases = [
        (lambda f: R.renyi_entropy(x, alpha, kernel, "median", fast_path=f), 0),
        (lambda f: R.joint_entropy(x, w, alpha, kernel, "median", fast_path=f), 0),
        (lambda f: R.mutual_information(x, w, alpha, kernel, "median", fast_path=f), 0),
        (lambda f: R.bipartite_divergence(x, y, alpha, kernel, "median", fast_path=f), 2),  # no fast route
        (lambda f: R.mirrored_divergence(x, y, alpha, kernel, "median", fast_path=f), 1),
        (lambda f: R.pooled_divergence(x, yp, alpha, kernel, "median", mix=0.2, fast_path=f), 1),
        (lambda f: R.cross_entropy(x, y, alpha, kernel, "median", "bipartite", fast_path=f), 2),
    ]
    real_eigh = torch.linalg.eigh
    calls = []

    def counting_eigh(a, *args, **kwargs):
        calls.append(a.shape)
        return real_eigh(a, *args, **kwargs)

    for fn, n_eigh in cases:
        tol = 1e-10
        slow = float(fn(False))
        monkeypatch.setattr(torch.linalg, "eigh", counting_eigh)
        calls.clear()
        fast = float(fn(True))
        monkeypatch.setattr(torch.linalg, "eigh", real_eigh)
        assert len(calls) == n_eigh, calls  # the fast path skips eigendecompositions
        assert abs(fast - slow) <= tol * max(1.0, abs(slow)), (fast, slow)


MEASURE_FNS = {
    "entropy": lambda x, y, s: R.renyi_entropy(x, 0.7, "gaussian", s),
    "joint": lambda x, y, s: R.joint_entropy(x, y[..., :7, :], 0.7, "gaussian", s),
    "mi": lambda x, y, s: R.mutual_information(x, y[..., :7, :], 2, "laplacian", s),
    "bipartite": lambda x, y, s: R.bipartite_divergence(x, y[..., :7, :], 0.7, "gaussian", s),
    "mirrored": lambda x, y, s: R.mirrored_divergence(x, y[..., :7, :], 1.5, "laplacian", s),
    "pooled": lambda x, y, s: R.pooled_divergence(x, y, 0.7, "gaussian", s),
    "pooled_mix": lambda x, y, s: R.pooled_divergence(x, y, 1.5, "laplacian", s, mix=0.1),
    "cross": lambda x, y, s: R.cross_entropy(x, y, 0.7, "gaussian", s, "pooled"),
    "gram": lambda x, y, s: R.gram_matrix(x, y, "laplacian", s),
    "median": lambda x, y, s: R.median_bandwidth(x, y),
}


@pytest.mark.parametrize("name", list(MEASURE_FNS))
@pytest.mark.parametrize("sigma", [1.2, "median"])
def test_batched_equals_loop(name, sigma):
    g = torch.Generator().manual_seed(11)
    xb = torch.randn(2, 3, 7, 4, generator=g, dtype=F64)
    yb = torch.randn(2, 3, 9, 4, generator=g, dtype=F64) + 0.3
    fn = MEASURE_FNS[name]
    got = fn(xb, yb, sigma)
    assert got.shape[:2] == (2, 3)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(got[i, j], fn(xb[i, j], yb[i, j], sigma), rtol=1e-12, atol=1e-12)
    # broadcasting an unbatched target over the batch
    got = fn(xb[0], yb[0, 0], sigma)
    for j in range(3):
        torch.testing.assert_close(got[j], fn(xb[0, j], yb[0, 0], sigma), rtol=1e-12, atol=1e-12)


def test_batched_gradients_equal_loop():
    g = torch.Generator().manual_seed(12)
    xb = torch.randn(3, 6, 4, generator=g, dtype=F64, requires_grad=True)
    yb = torch.randn(3, 8, 4, generator=g, dtype=F64) + 0.3
    (gb,) = torch.autograd.grad(R.pooled_divergence(xb, yb, 0.5, "gaussian", "median").sum(), xb)
    for i in range(3):
        xi = xb[i].detach().clone().requires_grad_()
        (gi,) = torch.autograd.grad(R.pooled_divergence(xi, yb[i], 0.5, "gaussian", "median"), xi)
        torch.testing.assert_close(gb[i], gi, rtol=1e-10, atol=1e-12)


def test_dtype_is_preserved():
    x32, y32 = torch.tensor(X, dtype=torch.float32), torch.tensor(YP, dtype=torch.float32)
    v32 = R.pooled_divergence(x32, y32, 0.5, "gaussian", "median")
    assert v32.dtype == torch.float32
    close(v32, float(R.pooled_divergence(t(X), t(YP), 0.5, "gaussian", "median")), 1e-6)
    assert R.gram_matrix(x32).dtype == torch.float32
    assert R.median_bandwidth(x32).dtype == torch.float32
    x32.requires_grad_()
    R.renyi_entropy(x32, 0.5).backward()
    assert x32.grad.dtype == torch.float32 and torch.isfinite(x32.grad).all()


def test_renyi_divergence_module():
    loss = R.RenyiDivergence()
    assert (loss.alpha, loss.kernel, loss.sigma, loss.measure, loss.mix) == (0.5, "gaussian", "median", "pooled", 0.0)
    x = t(X, requires_grad=True)
    v = loss(x, t(YP))
    close(v, float(R.pooled_divergence(t(X), t(YP), 0.5, "gaussian", "median")), 1e-14)
    v.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for measure in ("bipartite", "mirrored"):
        m = R.RenyiDivergence(alpha=2.0, kernel="laplacian", sigma=1.0, measure=measure)
        close(m(t(X), t(Y)), float(R.divergence(t(X), t(Y), 2.0, "laplacian", 1.0, measure)), 1e-14)
    m = R.RenyiDivergence(alpha=1.5, mix=0.1)
    close(m(t(X), t(YP)), float(R.pooled_divergence(t(X), t(YP), 1.5, "gaussian", "median", mix=0.1)), 1e-14)
    assert "measure='pooled'" in repr(loss)
    with pytest.raises(ValueError, match="sigma"):
        R.RenyiDivergence(sigma=-1.0)
    with pytest.raises(ValueError, match="mix"):
        R.RenyiDivergence(measure="bipartite", mix=0.1)
    # minimising it moves codes towards the target sample
    g = torch.Generator().manual_seed(0)
    target = torch.randn(48, 3, generator=g, dtype=F64)
    codes = (torch.randn(48, 3, generator=g, dtype=F64) * 0.3 + 2.0).requires_grad_()
    opt = torch.optim.Adam([codes], lr=0.05)
    first = float(loss(codes, target).detach())
    for _ in range(60):
        opt.zero_grad()
        loss(codes, target).backward()
        opt.step()
    assert float(loss(codes, target).detach()) < 0.5 * first
    assert codes.detach().mean(0).norm() < 1.0  # the mean moved from (2, 2, 2) towards 0


def test_package_imports_only_torch_stdlib_and_itself():
    """The folder can be copied out of genzoo: torch, the standard library, and its own modules, relatively."""
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(RENYI_DIR.glob("*.py")):
        mods = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and (RENYI_DIR / f"{node.module}.py").is_file(), (path.name, node.module)
            elif isinstance(node, ast.ImportFrom):
                mods.add(node.module.split(".")[0])
        assert mods - stdlib <= {"torch"}, (path.name, mods)


def test_a_copy_of_the_package_works_outside_genzoo(tmp_path):
    copy = tmp_path / "renyi_copy"
    copy.mkdir()
    for path in RENYI_DIR.glob("*.py"):
        (copy / path.name).write_text(path.read_text())
    try:
        standalone = load_by_path(copy, "renyi_copy")
        got = standalone.pooled_divergence(t(X), t(YP), 0.5)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "renyi_copy"]:
            del sys.modules[name]
    assert float(got) == float(R.pooled_divergence(t(X), t(YP), 0.5))
