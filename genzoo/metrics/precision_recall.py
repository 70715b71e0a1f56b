"""Precision and recall of generated images on Inception features.

- `precision_recall`: improved precision and recall (Kynkaenniemi et al. 2019). Each real feature gets a ball
  whose radius is the distance to its k-th nearest real neighbour (k = 3); precision is the fraction of generated
  features inside at least one real ball, recall the fraction of real features inside at least one generated ball.
  With the same real balls, density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models"): density is the number of real balls each generated feature falls in, summed, over k times
  the generated count (1 on average when the two distributions agree; not capped at 1); coverage is the fraction
  of real balls that hold at least one generated feature.
- `prd`: precision-recall for distributions (Sajjadi et al. 2018), as LBAE reports it: real and generated features
  clustered together by k-means (20 clusters), the PRD curve over 1001 slopes, averaged over 10 clusterings; the
  summaries are F8 (recall-like) and F1/8 (precision-like), each the maximum over the curve.

Both take the same options as `fid` (source, reference, count, mode, ...) and share its cached features.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import METRICS, MetricValue
from genzoo.metrics.fid import Mode, Source, feature_pair


def _sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T).clamp_min_(0)


def knn_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Squared distance from each row to its k-th nearest other row (the row itself, at 0, is skipped)."""
    if len(features) <= k:
        raise GenzooError(f"precision/recall with k={k} needs more than {k} images per side", "raise count / --limit")
    return torch.cat(
        [
            _sq_distances(features[i : i + chunk], features).kthvalue(k + 1, dim=1).values
            for i in range(0, len(features), chunk)
        ]
    )


def coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of `points` within the radius of at least one centre."""
    inside = [(_sq_distances(points[i : i + chunk], centres) <= radii).any(1) for i in range(0, len(points), chunk)]
    return torch.cat(inside).double().mean().item()


def improved_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, device="cpu") -> tuple[float, float]:
    """(precision, recall), distances in float64."""
    real_t = torch.as_tensor(real, dtype=torch.float64, device=device)
    fake_t = torch.as_tensor(fake, dtype=torch.float64, device=device)
    precision = coverage(fake_t, real_t, knn_radii(real_t, k))
    recall = coverage(real_t, fake_t, knn_radii(fake_t, k))
    return precision, recall


def density_and_coverage(
    real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, k: int, chunk: int = 1024
) -> tuple[float, float]:
    """Naeem et al.'s density and coverage from the real features' k-NN radii (squared, as `knn_radii` gives)."""
    inside_count = torch.zeros((), dtype=torch.float64, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for i in range(0, len(fake), chunk):
        inside = _sq_distances(fake[i : i + chunk], real) <= real_radii  # (fakes, reals)
        inside_count += inside.sum()
        covered |= inside.any(0)
    return (inside_count / (k * len(fake))).item(), covered.double().mean().item()


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 3, device="cpu") -> dict:
    """{precision, recall, density, coverage}; precision, density and coverage share the real k-NN radii."""
    real_t = torch.as_tensor(real, dtype=torch.float64, device=device)
    fake_t = torch.as_tensor(fake, dtype=torch.float64, device=device)
    real_radii = knn_radii(real_t, k)
    density, covered = density_and_coverage(real_t, fake_t, real_radii, k)
    return {
        "precision": coverage(fake_t, real_t, real_radii),
        "recall": coverage(real_t, fake_t, knn_radii(fake_t, k)),
        "density": density,
        "coverage": covered,
    }


def prd_curve(eval_dist: np.ndarray, ref_dist: np.ndarray, num_angles: int = 1001, epsilon: float = 1e-10):
    """PRD curve of two histograms: precision(l) = sum min(l ref, eval), recall = precision / l over slopes l."""
    slopes = np.tan(np.linspace(epsilon, math.pi / 2 - epsilon, num=num_angles))[:, None]
    precision = np.minimum(ref_dist[None, :] * slopes, eval_dist[None, :]).sum(axis=1)
    recall = precision / slopes[:, 0]
    return np.clip(precision, 0, 1), np.clip(recall, 0, 1)


def prd_from_features(
    real: np.ndarray,
    fake: np.ndarray,
    num_clusters: int = 20,
    num_angles: int = 1001,
    num_runs: int = 10,
    seed: int = 0,
):
    """Averaged PRD curve (precision, recall) of `fake` against `real` (Sajjadi et al.'s
    compute_prd_from_embedding)."""
    from sklearn.cluster import MiniBatchKMeans

    if len(real) != len(fake):
        raise GenzooError(
            f"PRD compares as many generated as real images, got {len(fake)} and {len(real)}",
            "leave prd.count unset (it then equals the reference count)",
        )
    precisions, recalls = [], []
    data = np.vstack([fake, real]).astype(np.float64)
    for run in range(num_runs):
        labels = MiniBatchKMeans(n_clusters=num_clusters, n_init=10, random_state=seed + run).fit(data).labels_
        eval_bins = np.histogram(labels[: len(fake)], bins=num_clusters, range=[0, num_clusters], density=True)[0]
        ref_bins = np.histogram(labels[len(fake) :], bins=num_clusters, range=[0, num_clusters], density=True)[0]
        p, r = prd_curve(eval_bins, ref_bins, num_angles)
        precisions.append(p)
        recalls.append(r)
    return np.mean(precisions, axis=0), np.mean(recalls, axis=0)


def f_beta(precision, recall, beta: float, epsilon: float = 1e-10):
    return (1 + beta**2) * (precision * recall) / (beta**2 * precision + recall + epsilon)


def prd_f_scores(precision, recall, beta: float = 8) -> tuple[float, float]:
    """(F_beta, F_1/beta), each maximised over the curve: F8 weighs recall, F1/8 precision."""
    return float(np.max(f_beta(precision, recall, beta))), float(np.max(f_beta(precision, recall, 1 / beta)))


@METRICS.register(
    "precision_recall",
    values={
        "recall": MetricValue("recall", better="higher", headline=True),
        "precision": MetricValue("precision", better="higher"),
        "density": MetricValue("density", better="higher"),
        "coverage": MetricValue("coverage", better="higher"),
    },
    sample_based=True,
)
def precision_recall(
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
    k: int = 3,
) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019): k-NN balls on Inception features, k = 3; with
    density and coverage (Naeem et al. 2020) from the same real balls."""
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
        reference_seed=reference_seed,
    )
    values = precision_recall_density_coverage(ref, gen, k, next(model.parameters()).device)
    return {
        **values,
        "images": len(gen),
        "reference_images": len(ref),
        "protocol": {**protocol, "k": k},
    }


@METRICS.register(
    "prd", values={"f8": MetricValue(better="higher"), "f1_8": MetricValue(better="higher")}, sample_based=True
)
def prd(
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
    num_clusters: int = 20,
    num_angles: int = 1001,
    num_runs: int = 10,
) -> dict:
    """PRD F8 / F1/8 (Sajjadi et al. 2018) on Inception features, as LBAE reports it."""
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
        reference_seed=reference_seed,
    )
    p, r = prd_from_features(ref, gen, num_clusters, num_angles, num_runs, seed)
    f8, f1_8 = prd_f_scores(p, r, 8)
    return {
        "f8": f8,
        "f1_8": f1_8,
        "images": len(gen),
        "reference_images": len(ref),
        "protocol": {**protocol, "num_clusters": num_clusters, "num_angles": num_angles, "num_runs": num_runs},
    }
