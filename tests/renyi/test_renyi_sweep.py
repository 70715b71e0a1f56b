"""A property sweep of the Renyi estimators against an independent float64 eigendecomposition reference.

Random cases (seeded): n from 4 to 200, d from 1 to 64, Gaussian or Laplacian kernel, a fixed or the median
bandwidth, 1-D samples and samples with repeated rows among them; every alpha in {0.3, 0.5, 0.99, 2, 3, 4}; the
entropy and the bipartite, mirrored and pooled divergences (pooled with mix = 0.25 at alpha > 1).

The reference is numpy/scipy written from the definitions (eigendecompositions only, the eigenvalue function g_p
of the module docstring, nothing shared with the module).  Where a Gram matrix is ill-conditioned the formula
itself is: a negative power multiplies round-off in the eigenvectors by eps^(1-alpha).  So each comparison
allows 1e-9 relative plus twenty times the spread of the reference under round-off-sized perturbations (the
rounding of the module's distance expansion in the Gram matrices, and of the mirrored sandwich): where the
problem is well-conditioned that spread is ~1e-14 and the estimator must agree to 1e-9.  D(x, x) = 0 (to 1e-9)
is checked for every case, ill-conditioned or not.  On the code before this sweep (a Cholesky route for integer
alpha) 13 of the 28 value comparisons failed (bipartite alpha >= 2: NaN, or 1e-9 to 2e-2 off) and 20 of the 28
D(x, x) checks (up to 14 instead of 0)."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from genzoo import renyi as R

ALPHAS = [0.3, 0.5, 0.99, 2.0, 3.0, 4.0]
EPS = 1e-12
U = np.finfo(np.float64).eps
MIX = 0.25


# ----------------------------------------------------------------------------------------------------
# reference
# ----------------------------------------------------------------------------------------------------
def g(lam, p, eps, trunc=False):
    """The regularised power g_p (module docstring): clamp (p < 0), pseudo-inverse smoothstep (p < 0, trunc),
    the C1 quadratic below eps (0 < p < 1), max(lam, 0)^p (p >= 1)."""
    lam = np.asarray(lam, dtype=np.float64)
    if p < 0 and trunc:
        u = np.clip(lam / eps - 1.0, 0.0, 1.0)
        return np.maximum(lam, eps) ** p * u * u * (3.0 - 2.0 * u)
    if p < 0:
        return np.maximum(lam, eps) ** p
    if p < 1:
        t = np.clip(lam / eps, 0.0, 1.0)
        return np.where(lam >= eps, np.maximum(lam, eps) ** p, eps**p * ((2.0 - p) * t + (p - 1.0) * t * t))
    return np.maximum(lam, 0.0) ** p


def ref_sigma(rule, *samples):
    """The median of the pairwise distances of the pooled samples (the entropy's: of x alone), or the number."""
    return float(np.median(pdist(np.vstack(samples)))) if rule == "median" else float(rule)


def kernel_of(a, b, kernel, s):
    dist = cdist(a, b)
    return np.exp(-(dist**2) / (2 * s * s)) if kernel == "gaussian" else np.exp(-dist / s)


def eigh(m):
    return np.linalg.eigh(0.5 * (m + m.T))


def ref_entropy(k, alpha):
    lam = eigh(k / len(k))[0]
    return math.log(g(lam, alpha, EPS).sum()) / (1.0 - alpha)


def ref_bipartite(k1, k2, alpha):
    n = len(k1)
    lam, v = eigh(k1 / n)
    mu, u = eigh(k2 / n)
    w = v.T @ u
    t = (g(lam, alpha, EPS)[:, None] * g(mu, 1.0 - alpha, EPS)[None, :] * w * w).sum()
    return math.log(t / np.trace(k1 / n)) / (alpha - 1.0)


def ref_mirrored(k1, k2, alpha, jitter=None):
    n = len(k1)
    mu, u = eigh(k2 / n)
    p = (u * g(mu, (1.0 - alpha) / (2.0 * alpha), EPS)) @ u.T
    m = p @ (k1 / n) @ p
    nu = eigh(m if jitter is None else jitter(m))[0]
    eps_m = max(n * U * nu[-1], np.finfo(np.float64).tiny)  # the relative threshold of M (module docstring)
    return math.log(g(nu, alpha, eps_m).sum() / np.trace(k1 / n)) / (alpha - 1.0)


def ref_pooled(k, nx, alpha, mix):
    """Reduced pooled formula Σ g_(α-1)(λ_i) g_(-α)(μ_j) (Uᵀ B W)_ij², pseudo-inverse negative powers."""
    m = len(k)
    ny = m - nx
    lam, u = eigh(k[:nx, :nx] / nx)
    q = np.full(m, mix / m)
    q[nx:] += (1.0 - mix) / ny
    if mix == 0.0:
        sq, b = k[nx:, nx:] / ny, k[:nx, nx:] / math.sqrt(nx * ny)
    else:
        rq = np.sqrt(q)
        sq, b = k * np.outer(rq, rq), k[:nx, :] * (rq / math.sqrt(nx))[None, :]
    mu, w = eigh(sq)
    c = u.T @ b @ w
    t = (g(lam, alpha - 1.0, EPS, trunc=True)[:, None] * g(mu, -alpha, EPS, trunc=True)[None, :] * c * c).sum()
    return math.log(t) / (alpha - 1.0)


def reference(measure, kx, ky, kxy, alpha, jitter=None):
    """The value from the pooled Gram blocks (kxy only for the pooled measure); jitter perturbs the mirrored
    sandwich M, the one intermediate matrix whose own rounding decides ill-conditioned values."""
    if measure == "entropy":
        return ref_entropy(kx, alpha)
    if measure == "bipartite":
        return ref_bipartite(kx, ky, alpha)
    if measure == "mirrored":
        return ref_mirrored(kx, ky, alpha, jitter)
    k = np.block([[kx, kxy], [kxy.T, ky]])
    return ref_pooled(k, len(kx), alpha, 0.0 if alpha < 1 else MIX)


def symmetric_noise(n, scale, rng):
    e = np.triu(rng.standard_normal((n, n)) * scale, 1)
    return e + e.T


def noisy_kernel(a, b, kernel, s, rng):
    """The kernel with the rounding of the module's evaluation (centred points, ‖a‖² + ‖b‖² - 2a·b): the squared
    distance is off by ~4u(‖a_i‖² + ‖b_j‖²), which the Laplacian's square root turns into up to the square root
    of that for close points.  Symmetric with an exact unit diagonal when a is b, as the module's blocks are."""
    c = np.vstack([a, b]).mean(0)
    sq = ((a - c) ** 2).sum(1)[:, None] + ((b - c) ** 2).sum(1)[None, :]
    d2 = cdist(a, b) ** 2
    noise = symmetric_noise(len(a), 1.0, rng) if a is b else rng.standard_normal(d2.shape)
    delta = 4 * U * sq * noise
    k = kernel_of(a, b, kernel, s)
    if kernel == "gaussian":
        return k * (1.0 - delta / (2 * s * s))
    return k * (1.0 - (np.sqrt(np.maximum(d2 + delta, 0.0)) - np.sqrt(d2)) / s)


def reference_with_spread(measure, x, y, kernel, s_own, s, alpha, rng, rounds=4):
    """The reference value and its largest change over `rounds` round-off-sized perturbations."""
    sx = s_own if measure == "entropy" else s
    kx, ky, kxy = kernel_of(x, x, kernel, sx), kernel_of(y, y, kernel, s), kernel_of(x, y, kernel, s)
    want = reference(measure, kx, ky, kxy, alpha)

    def jitter(m):
        return m + symmetric_noise(len(m), 4 * U * math.sqrt(len(m)) * np.abs(m).max(), rng)

    spread = 0.0
    for _ in range(rounds):
        px, py = noisy_kernel(x, x, kernel, sx, rng), noisy_kernel(y, y, kernel, s, rng)
        pxy = noisy_kernel(x, y, kernel, s, rng)
        spread = max(spread, abs(reference(measure, px, py, pxy, alpha, jitter) - want))
    return want, spread


# ----------------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------------
def make_case(seed):
    rng = np.random.default_rng(seed)
    n = int(round(math.exp(rng.uniform(math.log(4), math.log(200)))))
    kind = ["plain", "plain", "one_d", "repeated"][seed % 4]
    d = 1 if kind == "one_d" else int(round(math.exp(rng.uniform(0, math.log(64)))))
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d)) * rng.uniform(0.7, 1.5) + rng.uniform(0.0, 0.8)
    if kind == "repeated":  # about a third of the rows repeated (kept below half the pairs: the median stays > 0)
        reps = rng.integers(0, max(1, n // 3), size=n // 3)
        x[n - len(reps) :] = x[reps]
        y[n - len(reps) :] = y[reps]
    kernel = "gaussian" if rng.uniform() < 0.6 else "laplacian"
    sigma = "median" if rng.uniform() < 0.5 else float(rng.uniform(0.3, 3.0)) * math.sqrt(d)
    return dict(seed=seed, n=n, d=d, kind=kind, x=x, y=y, kernel=kernel, sigma=sigma)


CASES = [make_case(s) for s in range(28)]


def module_value(measure, x, y, alpha, kernel, sigma):
    xt, yt = torch.tensor(x), torch.tensor(y)
    if measure == "entropy":
        return float(R.renyi_entropy(xt, alpha, kernel, sigma))
    mix = MIX if measure == "pooled" and alpha > 1 else 0.0
    return float(R.divergence(xt, yt, alpha, kernel, sigma, measure, mix=mix))


def case_id(c):
    sigma = "median" if c["sigma"] == "median" else "fixed"
    return f"{c['seed']}-{c['kind']}-n{c['n']}-d{c['d']}-{c['kernel'][:3]}-{sigma}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_estimator_agrees_with_the_eigendecomposition_formula(case):
    rng = np.random.default_rng(1000 + case["seed"])
    x, y, kernel = case["x"], case["y"], case["kernel"]
    s, s_own = ref_sigma(case["sigma"], x, y), ref_sigma(case["sigma"], x)
    failures = []
    for alpha in ALPHAS:
        for measure in ("entropy", "bipartite", "mirrored", "pooled"):
            want, spread = reference_with_spread(measure, x, y, kernel, s_own, s, alpha, rng)
            got = module_value(measure, x, y, alpha, kernel, case["sigma"])
            tol = 1e-9 * max(1.0, abs(want)) + 20.0 * spread
            if not (math.isfinite(got) and abs(got - want) <= tol):
                failures.append(f"{measure} alpha={alpha}: got {got!r}, reference {want!r} (allowed {tol:.1e})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_divergence_of_a_sample_with_itself_is_zero(case):
    x, kernel, sigma = case["x"], case["kernel"], case["sigma"]
    failures = []
    for alpha in ALPHAS:
        for measure in ("bipartite", "mirrored", "pooled"):
            got = module_value(measure, x, x, alpha, kernel, sigma)
            if not abs(got) <= 1e-9:
                failures.append(f"{measure} alpha={alpha}: D(x, x) = {got!r}")
    assert not failures, "\n".join(failures)


def test_the_one_dimensional_case_of_the_report():
    """60 draws of a 1-D standard normal, median bandwidth: D(x, x) at alpha = 3 had been 7.63."""
    x = torch.randn(60, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    for measure in ("bipartite", "mirrored", "pooled"):
        d = R.divergence(x, x, 3.0, "gaussian", "median", measure, mix=MIX if measure == "pooled" else 0.0)
        assert float(d) == 0.0
        (grad,) = torch.autograd.grad(d, x)  # the zero is part of the graph: D(x, x) is a minimum
        assert float(grad.abs().max()) == 0.0
    # a batch where only some entries compare a sample with itself: those are 0, the others are computed
    xb = torch.randn(3, 20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    yb = xb.clone()
    yb[1] *= 1.5  # (a translation would not do: with a fixed sigma the paired measures cannot see it)
    got = R.bipartite_divergence(xb, yb, 3.0, "gaussian", 1.0)
    assert float(got[0]) == 0.0 and float(got[2]) == 0.0
    assert float(got[1]) == pytest.approx(float(R.bipartite_divergence(xb[1], yb[1], 3.0, "gaussian", 1.0)), 1e-12)
    assert float(got[1]) > 1e-3
