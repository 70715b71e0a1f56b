"""FID and KID (clean-fid's algorithms), on generated samples, reconstructions or interpolations.

Images are quantised to uint8 first, exactly as `genzoo sample --images-dir` saves them, so a number here equals
clean-fid's `compute_fid` on folders of those PNGs (tested). Reference features are cached on disk under
<cache>/fid-stats (see genzoo.metrics.inception.cache_root), keyed by the reference images' content hash, the
mode and the Inception weights, never in clean-fid's package folder.

Honest at small sample counts:
- `fid.bootstrap=B` adds a 95 % bootstrap interval: FID ± 1.96 x the std of FID over B resamples (both sides drawn
  with replacement). It shows the sampling noise of one evaluation, not FID's small-sample bias. It is the normal
  interval, not the percentile one, on purpose: a resample repeats images, holds fewer distinct ones and so has a
  larger bias, which shifts every resampled FID upwards (measured: +9 at 250 images, the percentile interval then
  missing the estimate); `fid_bootstrap_mean` records that shift.
- `fid_infinity` (Chong & Forsyth, CVPR 2020, "Effectively Unbiased FID and Inception Score and where to find
  them"): FID of random subsets of the generated features at `points` counts from `min_count` to all of them,
  against all reference features; FID is linear in 1/N, and the intercept of the least-squares line is FID at
  infinitely many samples.
- `kid` uses subsets smaller than the samples (half the smaller side, at most 1000, by default) so that its std
  over subsets measures something; a subset_size as large as a side is refused (every subset would be that side).
- `reference_seed` draws the reference images at random (recorded) instead of taking the split's first ones.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
from typing import Annotated, Callable, Literal

import annotated_types
import numpy as np
import torch

from genzoo.core.capabilities import DrawsCodePaths, can
from genzoo.core.errors import GenzooError
from genzoo.core.registry import METRICS, MetricValue
from genzoo.metrics.inception import InceptionFeatures, cache_root

Source = Literal["samples", "reconstructions", "interpolations"]
Mode = Literal["clean", "legacy_tensorflow", "legacy_pytorch"]


# -- the statistics -------------------------------------------------------------------------------------------
def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr sqrt(S1 S2) for symmetric PSD S1, S2: the eigenvalues of S1 S2 are those of sqrt(S1) S2 sqrt(S1)."""
    w, v = np.linalg.eigh(sigma1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma2 @ root), 0, None)).sum())


def fid_from_features(reference: np.ndarray, generated: np.ndarray) -> float:
    """The FID of two feature sets: clean-fid's `fid_from_feats` (mean, np.cov, Frechet distance), computed exactly
    without scipy's `sqrtm` (which takes minutes on a CPU at 2048 dimensions and is inexact when the covariances
    are singular, as they are with fewer than 2049 images).

    With A, B the centred features over sqrt(n - 1), S1 = A'A and S2 = B'B, so Tr sqrt(S1 S2) is the sum of the
    singular values of A B' (an n1 x n2 matrix): used when a side has at most as many images as features;
    otherwise the symmetric eigen-decomposition route of `trace_sqrt_product`.
    """
    x = np.asarray(generated, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    diff = x.mean(0) - y.mean(0)
    if min(len(x), len(y)) <= x.shape[1]:
        tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    else:
        tr_covmean = trace_sqrt_product(a.T @ a, b.T @ b)
    return float(diff.dot(diff) + (a * a).sum() + (b * b).sum() - 2 * tr_covmean)


def kernel_distance(
    reference: np.ndarray, generated: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel (x.y/d + 1)^3, averaged over random subsets.

    clean-fid's `kernel_distance(reference, generated)` after `np.random.seed(seed)` draws the same subsets; here
    in float64. Returns (mean, standard deviation over subsets).
    """
    d = reference.shape[1]
    m = min(len(reference), len(generated), subset_size)
    if m < 2:
        raise GenzooError("KID needs at least 2 images on each side", "raise count / --limit")
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = generated[rng.choice(len(generated), m, replace=False)].astype(np.float64)
        y = reference[rng.choice(len(reference), m, replace=False)].astype(np.float64)
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        values.append(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)
    return float(np.mean(values)), float(np.std(values))


def fid_bootstrap(reference: np.ndarray, generated: np.ndarray, rounds: int, seed: int = 0) -> dict:
    """{std, mean} of FID over `rounds` bootstrap resamples (each side drawn with replacement, reference indices
    first, from numpy's default_rng(seed)). The mean sits above the full-sample FID (a resample has fewer distinct
    images, so more bias): use the std, centred on the full-sample FID, for an interval."""
    if rounds < 2:
        raise GenzooError(f"fid.bootstrap needs at least 2 rounds, got {rounds}", "set fid.bootstrap=0 or >= 2")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        ri = rng.integers(0, len(reference), len(reference))
        gi = rng.integers(0, len(generated), len(generated))
        values.append(fid_from_features(reference[ri], generated[gi]))
    return {"std": float(np.std(values, ddof=1)), "mean": float(np.mean(values))}


def fid_infinity_from_features(
    reference: np.ndarray, generated: np.ndarray, points: int = 15, min_count: int | None = None, seed: int = 0
) -> dict:
    """FID-infinity (Chong & Forsyth 2020): FID of random subsets of `generated` at `points` evenly spaced counts
    from `min_count` (default a fifth of them) to all, against all of `reference`; the least-squares line of FID
    against 1/N, evaluated at 1/N = 0. Returns {fid_infinity, slope, counts, fids}."""
    n = len(generated)
    low = max(2, n // 5 if min_count is None else min_count)
    if points < 2 or low >= n:
        raise GenzooError(
            f"FID-infinity needs at least 2 distinct sample counts, got {points} points from {low} to {n}",
            "raise fid_infinity.count or lower fid_infinity.min_count",
        )
    counts = np.unique(np.linspace(low, n, points).round().astype(int))
    rng = np.random.default_rng(seed)
    fids = [fid_from_features(reference, generated[rng.choice(n, c, replace=False)]) for c in counts]
    slope, intercept = np.polyfit(1.0 / counts, fids, 1)
    return {"fid_infinity": float(intercept), "slope": float(slope), "counts": counts.tolist(), "fids": fids}


# -- images -----------------------------------------------------------------------------------------------------
def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8, rounding as genzoo.core.grids does when it writes PNGs."""
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _unit(dataset, idx, device) -> torch.Tensor:
    from genzoo.datasets.base import to_unit_float

    return to_unit_float(dataset.__getitems__(idx).to(device))


@torch.no_grad()
def codes_between(model, z1: torch.Tensor, z2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Codes t (N, 1) of the way from z1 to z2 (N, latent): on straight lines, or on the model's own paths
    (capabilities.DrawsCodePaths: LBAE's binary codes)."""
    if not can(model, DrawsCodePaths):
        return z1 + (z2 - z1) * t
    return torch.cat([model.codes_between(a, b, f).to(z1) for a, b, f in zip(z1, z2, t)])


def model_images(model, dataset, source: str, count: int, seed: int = 0, batch_size: int = 250) -> torch.Tensor:
    """`count` uint8 images from the model: prior samples, reconstructions of the first `count` images of
    `dataset`, or decodings at a uniform random point between the codes of two random images of `dataset`
    (on the model's own code paths if it draws them, else on a straight line: codes_between)."""
    model.eval()
    device = _device(model)
    g = torch.Generator().manual_seed(seed)
    out = []
    if source == "samples":
        for i in range(0, count, batch_size):
            out.append(quantize(model.sample(min(batch_size, count - i), generator=g)))
    elif source == "reconstructions":
        if count > len(dataset):
            raise GenzooError(f"{count} reconstructions asked of a split of {len(dataset)} images", "lower count")
        for i in range(0, count, batch_size):
            out.append(quantize(model.reconstruct(_unit(dataset, list(range(i, min(i + batch_size, count))), device))))
    elif source == "interpolations":
        first = torch.randint(len(dataset), (count,), generator=g)
        second = torch.randint(len(dataset), (count,), generator=g)
        t = torch.rand(count, 1, generator=g)
        for i in range(0, count, batch_size):
            s = slice(i, min(i + batch_size, count))
            z1 = model.encode(_unit(dataset, first[s].tolist(), device))
            z2 = model.encode(_unit(dataset, second[s].tolist(), device))
            out.append(quantize(model.decode(codes_between(model, z1, z2, t[s].to(z1)))))
    else:
        raise GenzooError(f"unknown image source '{source}'", "use samples, reconstructions or interpolations")
    return torch.cat(out) if out else torch.zeros(0, *model.image_shape, dtype=torch.uint8)


# -- features, cached -------------------------------------------------------------------------------------------
_EXTRACTORS: dict = {}
_MODEL_FEATURES: dict = {}  # within a process: (model, source, count, seed, extractor) -> features
_REFERENCE_FEATURES: dict = {}


def extractor(
    mode: str = "clean", inception: str | None = None, device="cpu", batch_size: int = 64
) -> InceptionFeatures:
    key = (mode, inception, os.environ.get("GENZOO_INCEPTION"), str(device), batch_size)
    if key not in _EXTRACTORS:
        _EXTRACTORS.clear()
        _EXTRACTORS[key] = InceptionFeatures(mode, inception, device, batch_size)
    return _EXTRACTORS[key]


def images_sha256(images: torch.Tensor) -> str:
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()


def reference_indices(size: int, count: int, seed: int | None = None) -> list[int]:
    """The first `count` indices, or with a seed `count` distinct ones drawn at random (sorted)."""
    if seed is None:
        return list(range(count))
    return sorted(np.random.default_rng(seed).choice(size, count, replace=False).tolist())


def reference_features(dataset, count: int, fx: InceptionFeatures, seed: int | None = None) -> tuple[np.ndarray, dict]:
    """Features of the first `count` images of `dataset` (or `count` drawn at random with `seed`), from
    <cache>/fid-stats when computed before (the key is the images' content hash)."""
    images = dataset.__getitems__(reference_indices(len(dataset), count, seed))
    digest = images_sha256(images)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.name or "dataset")
    weights = (fx.layers_sha256 or fx.source or "")[:12]
    path = cache_root() / "fid-stats" / f"{name}-n{count}-{fx.mode}-{digest[:16]}-{weights}.npz"
    info = {
        "dataset": dataset.name,
        "images": count,
        "images_sha256": digest,
        "draw": "first" if seed is None else {"random_seed": seed},
        "stats_file": str(path),
    }
    key = str(path)
    if key in _REFERENCE_FEATURES:
        return _REFERENCE_FEATURES[key], {**info, "cached": True}
    cached = False
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                feats = f["feats"]
            cached = feats.shape == (count, 2048)
        except (OSError, ValueError, KeyError):
            cached = False
    if not cached:
        feats = fx(images)
        from genzoo.core.io import atomic_path

        # mu/sigma as clean-fid's make_custom_stats stores them, plus the features (KID, precision/recall)
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                feats=feats,
                mu=np.mean(feats, axis=0),
                sigma=np.cov(feats, rowvar=False),
                meta=np.array(json.dumps({**info, **fx.protocol})),
            )
    if len(_REFERENCE_FEATURES) >= 4:
        _REFERENCE_FEATURES.pop(next(iter(_REFERENCE_FEATURES)))
    _REFERENCE_FEATURES[key] = feats
    return feats, {**info, "cached": cached}


def forget_model_features() -> None:
    """Drop cached model features (the trainer evaluates one model object whose weights keep changing)."""
    _MODEL_FEATURES.clear()


def model_features(model, dataset, source: str, count: int, seed: int, fx: InceptionFeatures) -> np.ndarray:
    data_key = None if source == "samples" else (dataset.name or id(dataset), len(dataset))
    key = (id(model), source, count, seed, id(fx), data_key)
    hit = _MODEL_FEATURES.get(key)
    if hit is None or hit[0] is not model:
        if len(_MODEL_FEATURES) >= 4:
            _MODEL_FEATURES.pop(next(iter(_MODEL_FEATURES)))
        _MODEL_FEATURES[key] = hit = (model, fx(model_images(model, dataset, source, count, seed)))
    return hit[1]


def feature_pair(
    model,
    dataset,
    *,
    limit,
    splits,
    source,
    reference,
    count,
    reference_count,
    mode,
    inception,
    seed,
    batch_size,
    reference_seed=None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(reference features, model features, protocol) for the metrics built on Inception features."""
    if reference is not None:
        if splits is None:
            raise GenzooError("a named reference split needs the dataset loader", "run through `genzoo eval`")
        ref_data = splits(reference)
    else:
        ref_data = dataset
    m = len(ref_data) if reference_count is None else min(reference_count, len(ref_data))
    m = m if limit is None else min(m, limit)
    n = (m if source == "samples" else min(m, len(dataset))) if count is None else count
    n = n if limit is None else min(n, limit)
    if n < 2 or m < 2:
        raise GenzooError(f"need at least 2 images on each side, got {n} and {m}", "raise count / --limit")
    fx = extractor(mode, inception, _device(model), batch_size)
    ref, ref_info = reference_features(ref_data, m, fx, reference_seed)
    gen = model_features(model, dataset, source, n, seed, fx)
    protocol = {
        **fx.protocol,
        "source": source,
        "images": n,
        "seed": seed,
        "source_split": dataset.name if source != "samples" else None,
        "reference": ref_info,
        "quantized": "uint8, as saved PNGs",
    }
    return ref, gen, protocol


def _pair(model, dataset, options: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    keys = (
        "limit splits source reference count reference_count mode inception seed batch_size reference_seed"
    ).split()
    return feature_pair(model, dataset, **{k: options[k] for k in keys})


@METRICS.register("fid", better="lower", display="FID", headline=True, sample_based=True)
def fid(
    model,
    dataset,
    limit: int | None = None,
    splits: Callable | None = None,
    source: Source = "samples",
    reference: str | None = None,
    count: int | None = None,
    reference_count: int | None = None,
    mode: Mode = "clean",
    inception: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    reference_seed: int | None = None,
    bootstrap: int = 0,
) -> dict:
    """Frechet Inception distance (clean-fid), of samples, reconstructions or interpolations vs a reference split;
    with `bootstrap` > 0 also a 95 % bootstrap interval."""
    ref, gen, protocol = _pair(model, dataset, locals())
    value = fid_from_features(ref, gen)
    out = {"fid": value, "images": len(gen), "reference_images": len(ref)}
    if bootstrap > 0:
        boot = fid_bootstrap(ref, gen, bootstrap, seed)
        out.update(
            fid_ci_low=value - 1.96 * boot["std"],
            fid_ci_high=value + 1.96 * boot["std"],
            fid_bootstrap_std=boot["std"],
            fid_bootstrap_mean=boot["mean"],
        )
        interval = "FID ± 1.96 bootstrap std (both sides resampled): sampling noise, not the small-sample bias"
        protocol = {**protocol, "bootstrap": {"rounds": bootstrap, "interval": interval}}
    return {**out, "protocol": protocol}


@METRICS.register("fid_infinity", better="lower", display="FID-infinity", headline=True, sample_based=True)
def fid_infinity(
    model,
    dataset,
    limit: int | None = None,
    splits: Callable | None = None,
    source: Source = "samples",
    reference: str | None = None,
    count: int | None = None,
    reference_count: int | None = None,
    mode: Mode = "clean",
    inception: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    reference_seed: int | None = None,
    points: int = 15,
    min_count: int | None = None,
) -> dict:
    """FID-infinity (Chong & Forsyth 2020): FID extrapolated to infinitely many samples from a fit in 1/N."""
    ref, gen, protocol = _pair(model, dataset, locals())
    fit = fid_infinity_from_features(ref, gen, points, min_count, seed)
    return {
        "fid_infinity": fit["fid_infinity"],
        "slope": fit["slope"],
        "images": len(gen),
        "reference_images": len(ref),
        "protocol": {**protocol, "counts": fit["counts"], "fids": fit["fids"]},
    }


@METRICS.register("kid", better="lower", display="KID", sample_based=True)
def kid(
    model,
    dataset,
    limit: int | None = None,
    splits: Callable | None = None,
    source: Source = "samples",
    reference: str | None = None,
    count: int | None = None,
    reference_count: int | None = None,
    mode: Mode = "clean",
    inception: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    reference_seed: int | None = None,
    subsets: int = 100,
    subset_size: int | None = None,
) -> dict:
    """Kernel Inception distance (clean-fid's: cubic polynomial kernel, 100 subsets), subsets smaller than the
    samples (default: half the smaller side, at most 1000) so that kid_std, the std over subsets, means something."""
    ref, gen, protocol = _pair(model, dataset, locals())
    smaller = min(len(ref), len(gen))
    size = min(1000, smaller // 2) if subset_size is None else subset_size
    if size >= smaller:
        raise GenzooError(
            f"kid.subset_size {size} is not smaller than the samples ({len(gen)} generated, {len(ref)} reference): "
            "every subset would be the whole set and the std over subsets would be 0",
            f"leave kid.subset_size unset (half the smaller side, {smaller // 2}) or lower it",
        )
    if size < 2:
        raise GenzooError(f"KID needs subsets of at least 2 images, got {size}", "raise kid.count")
    mean, std = kernel_distance(ref, gen, subsets, size, seed)
    return {
        "kid": mean,
        "kid_std": std,
        "kid_subset_size": size,
        "images": len(gen),
        "reference_images": len(ref),
        "protocol": {**protocol, "subsets": subsets, "subset_size": size},
    }


# the exact pooled estimator up to this many feature vectors per side (two n x n eigendecompositions: 5.0 minutes
# and 5.9 GiB at 10,000 on two cores, BENCHMARKS.md); Nystrom with RENYI_LANDMARKS landmarks above it
RENYI_EXACT_MAX = 10_000
RENYI_LANDMARKS = 2000


RenyiEstimator = Literal["auto", "exact", "nystrom", "lanczos"]


def _check_renyi_options(alpha: float, landmarks, estimator) -> int | None:
    """The renyi_features options that conflict or fall outside what the estimators take, refused before any
    feature is computed; returns landmarks as an int (or None)."""
    if landmarks is not None:
        if isinstance(landmarks, bool) or not isinstance(landmarks, numbers.Integral) or landmarks < 2:
            raise GenzooError(
                f"renyi_features.landmarks must be an integer >= 2 (got {landmarks!r})",
                "write e.g. renyi_features.landmarks=2000, or leave it unset for the exact value up to "
                f"{RENYI_EXACT_MAX:,} vectors per side",
            )
        landmarks = int(landmarks)
    if estimator not in ("auto", "exact", "nystrom", "lanczos"):
        raise GenzooError(
            f"renyi_features.estimator must be auto, exact, nystrom or lanczos (got {estimator!r})",
            "write e.g. renyi_features.estimator=lanczos",
        )
    if landmarks is not None and estimator in ("exact", "lanczos"):
        raise GenzooError(
            f"renyi_features.landmarks applies to the nystrom estimator, not to estimator={estimator}",
            "drop landmarks, or set renyi_features.estimator=nystrom",
        )
    if estimator == "lanczos" and not 0 < alpha < 1:
        raise GenzooError(
            f"renyi_features.estimator=lanczos needs 0 < alpha < 1 (got alpha={alpha})",
            "use e.g. renyi_features.alpha=0.5, or estimator=exact",
        )
    return landmarks


def renyi_from_features(
    reference: np.ndarray,
    generated: np.ndarray,
    alpha: float = 0.5,
    landmarks: int | None = None,
    seed: int = 0,
    estimator: RenyiEstimator = "auto",
) -> tuple[float, float, str]:
    """(divergence, bandwidth, estimator used): genzoo's pooled matrix-based Renyi alpha-divergence
    (genzoo.renyi, Gaussian kernel) of the generated features from the reference ones.

    estimator "exact": all pooled pairs' median bandwidth and the exact estimator (an n x n eigendecomposition per
    side); "nystrom": `landmarks` (RENYI_LANDMARKS when unset) landmarks, an underestimate; "lanczos": the generated
    side exact and the reference side by stochastic Lanczos quadrature (within about 2 % of the exact value; the
    reference's n x n Gram matrix in memory), so the generated sample should be the smaller one; "auto": exact while
    both sides have at most RENYI_EXACT_MAX vectors and no `landmarks` is given, else Nystrom.  The approximations
    use the median of 2,000 pooled vectors drawn with `seed` (docs/mbrce.md, section 7).  The returned string says
    which estimator ran, so that only values of one estimator are compared."""
    from genzoo.renyi import lanczos_divergence, median_bandwidth, nystrom_divergence, pooled_divergence

    landmarks = _check_renyi_options(alpha, landmarks, estimator)
    x = torch.as_tensor(np.asarray(generated), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    if estimator == "auto":
        big = landmarks is not None or max(len(x), len(y)) > RENYI_EXACT_MAX
        estimator = "nystrom" if big else "exact"
    if estimator == "nystrom" and (landmarks or RENYI_LANDMARKS) >= len(x) + len(y):
        estimator = "exact"  # every vector a landmark
    if estimator == "exact":
        sigma = median_bandwidth(x, y)
        value = pooled_divergence(x, y, alpha, "gaussian", sigma)
        return float(value.item()), float(sigma.item()), "exact"
    g = torch.Generator().manual_seed(seed)
    sigma = median_bandwidth(x, y, max_points=2000, generator=g)
    if estimator == "lanczos":
        value = lanczos_divergence(x, y, alpha, "gaussian", sigma, generator=g)
        how = "lanczos, the 64 largest terms exact, 32 probes, 100 steps (within about 2 % of the exact value)"
    else:
        m = landmarks or RENYI_LANDMARKS
        value = nystrom_divergence(x, y, alpha, "gaussian", sigma, landmarks=m, generator=g)
        how = f"nystrom, {m} landmarks (an underestimate of the exact value)"
    return float(value.item()), float(sigma.item()), how + "; docs/mbrce.md, section 7"


@METRICS.register("renyi_features", values={"renyi_divergence": MetricValue(better="lower")}, sample_based=True)
def renyi_features(
    model,
    dataset,
    limit: int | None = None,
    splits: Callable | None = None,
    source: Source = "samples",
    reference: str | None = None,
    count: int | None = None,
    reference_count: int | None = None,
    mode: Mode = "clean",
    inception: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    reference_seed: int | None = None,
    alpha: float = 0.5,
    landmarks: Annotated[int, annotated_types.Ge(2)] | None = None,
    estimator: RenyiEstimator = "auto",
) -> dict:
    """Matrix-based Renyi alpha-divergence between Inception features of samples and of real images (genzoo's
    pooled estimator, Gaussian kernel, median bandwidth): prior-independent, comparable across models of one
    protocol.  `estimator` auto: exact up to 10,000 images per side, above it (or with `landmarks` set) the Nystrom
    approximation; exact, nystrom or lanczos to choose (recorded in the protocol's `estimator`)."""
    _check_renyi_options(alpha, landmarks, estimator)  # before minutes of Inception features, not after
    ref, gen, protocol = _pair(model, dataset, locals())
    value, sigma, used = renyi_from_features(ref, gen, alpha, landmarks, seed, estimator)
    exact = used == "exact"
    return {
        "renyi_divergence": value,
        "bandwidth": sigma,
        "images": len(gen),
        "reference_images": len(ref),
        "protocol": {
            **protocol,
            "alpha": alpha,
            "kernel": "gaussian",
            "sigma": "median of the pooled features" if exact else "median of 2,000 pooled features drawn at random",
            "estimator": used,
        },
    }
