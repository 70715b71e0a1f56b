from __future__ import annotations

import torch

from genzoo.core.registry import METRICS, MetricValue


def mmd(x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Unbiased squared MMD with a Gaussian kernel of bandwidth sigma (Gretton et al. 2012)."""

    def k(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * sigma**2))

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return (
        (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        - 2 * kxy.mean()
    )


@METRICS.register("prior_match", values={"renyi_divergence": MetricValue(), "mmd": MetricValue()}, circular=True)
@torch.no_grad()
def prior_match(
    model, dataset, limit: int | None = None, samples: int = 1000, alpha: float = 0.5, seed: int = 0
) -> dict:
    """How well the aggregate posterior matches the prior: matrix-based Renyi divergence and MMD (codes vs prior).

    Both sides are in the space `encode` returns: prior draws go through `code_from_prior` where a model has one
    (ALAE: E(x) is compared with w = F(z), the codes its D or MBRCE prior matches, not with z)."""
    from genzoo.datasets.base import to_unit_float
    from genzoo.models.base import prior_codes
    from genzoo.renyi import median_bandwidth, pooled_divergence

    model.eval()
    n = min(samples, len(dataset), limit or samples)
    device = next(model.parameters()).device
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
    codes = torch.cat(
        [model.encode(to_unit_float(dataset.__getitems__(chunk).to(device))) for chunk in idx.split(500)]
    )
    prior = prior_codes(model, n, seed + 1).to(codes)
    codes, prior = codes.double(), prior.double()
    sigma = median_bandwidth(codes, prior)
    return {
        "renyi_divergence": pooled_divergence(codes, prior, alpha, "gaussian", sigma).item(),
        "mmd": mmd(codes, prior, sigma).item(),
        "alpha": alpha,
        "bandwidth": sigma.item(),
        "codes": n,
    }
