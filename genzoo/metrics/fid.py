"""FID and KID (clean-fid's algorithms), on generated samples, reconstructions or interpolations.

Images are quantised to uint8 first, exactly as `genzoo sample --images-dir` saves them, so a number here equals
clean-fid's `compute_fid` on folders of those PNGs (tested). Reference features are cached on disk under
<cache>/fid-stats (see genzoo.metrics.inception.cache_root), keyed by the reference images' content hash, the
mode and the Inception weights, never in clean-fid's package folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Callable, Literal

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import METRICS
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
def model_images(model, dataset, source: str, count: int, seed: int = 0, batch_size: int = 250) -> torch.Tensor:
    """`count` uint8 images from the model: prior samples, reconstructions of the first `count` images of
    `dataset`, or decodings at a uniform random point between the codes of two random images of `dataset`
    (the model's own `interpolate(z1, z2, t)` if it has one, else a straight line)."""
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
        between = getattr(model, "interpolate", None)
        for i in range(0, count, batch_size):
            s = slice(i, min(i + batch_size, count))
            z1 = model.encode(_unit(dataset, first[s].tolist(), device))
            z2 = model.encode(_unit(dataset, second[s].tolist(), device))
            ti = t[s].to(z1)
            z = between(z1, z2, ti) if between is not None else z1 + (z2 - z1) * ti
            out.append(quantize(model.decode(z)))
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


def reference_features(dataset, count: int, fx: InceptionFeatures) -> tuple[np.ndarray, dict]:
    """Features of the first `count` images of `dataset`, from <cache>/fid-stats when computed before."""
    images = dataset.__getitems__(list(range(count)))
    digest = images_sha256(images)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", getattr(dataset, "name", "") or "dataset")
    weights = (fx.layers_sha256 or fx.source or "")[:12]
    path = cache_root() / "fid-stats" / f"{name}-n{count}-{fx.mode}-{digest[:16]}-{weights}.npz"
    info = {
        "dataset": getattr(dataset, "name", None),
        "images": count,
        "images_sha256": digest,
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
    data_key = None if source == "samples" else (getattr(dataset, "name", None) or id(dataset), len(dataset))
    key = (id(model), source, count, seed, id(fx), data_key)
    hit = _MODEL_FEATURES.get(key)
    if hit is None or hit[0] is not model:
        if len(_MODEL_FEATURES) >= 4:
            _MODEL_FEATURES.pop(next(iter(_MODEL_FEATURES)))
        _MODEL_FEATURES[key] = hit = (model, fx(model_images(model, dataset, source, count, seed)))
    return hit[1]


def feature_pair(
    model, dataset, *, limit, splits, source, reference, count, reference_count, mode, inception, seed, batch_size
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
    ref, ref_info = reference_features(ref_data, m, fx)
    gen = model_features(model, dataset, source, n, seed, fx)
    protocol = {
        **fx.protocol,
        "source": source,
        "images": n,
        "seed": seed,
        "source_split": getattr(dataset, "name", None) if source != "samples" else None,
        "reference": ref_info,
        "quantized": "uint8, as saved PNGs",
    }
    return ref, gen, protocol


@METRICS.register("fid")
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
) -> dict:
    """Frechet Inception distance (clean-fid), of samples, reconstructions or interpolations vs a reference split."""
    ref, gen, protocol = feature_pair(
        model,
        dataset,
        limit=limit,
        splits=splits,
        source=source,
        reference=reference,
        count=count,
        reference_count=reference_count,
        mode=mode,
        inception=inception,
        seed=seed,
        batch_size=batch_size,
    )
    return {"fid": fid_from_features(ref, gen), "images": len(gen), "reference_images": len(ref), "protocol": protocol}


@METRICS.register("kid")
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
    subsets: int = 100,
    subset_size: int = 1000,
) -> dict:
    """Kernel Inception distance (clean-fid's: cubic polynomial kernel, 100 subsets of at most 1000)."""
    ref, gen, protocol = feature_pair(
        model,
        dataset,
        limit=limit,
        splits=splits,
        source=source,
        reference=reference,
        count=count,
        reference_count=reference_count,
        mode=mode,
        inception=inception,
        seed=seed,
        batch_size=batch_size,
    )
    mean, std = kernel_distance(ref, gen, subsets, subset_size, seed)
    return {
        "kid": mean,
        "kid_std": std,
        "images": len(gen),
        "reference_images": len(ref),
        "protocol": {**protocol, "subsets": subsets, "subset_size": min(subset_size, len(ref), len(gen))},
    }
