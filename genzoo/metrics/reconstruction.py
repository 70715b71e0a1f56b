from __future__ import annotations

import torch
import torch.nn.functional as F

from genzoo.core.registry import METRICS, MetricValue


@METRICS.register(
    "reconstruction",
    values={
        "mse": MetricValue("reconstruction MSE", better="lower"),
        "psnr": MetricValue(better="higher", unit="dB"),
        "bce": MetricValue(better="lower"),
    },
)
@torch.no_grad()
def reconstruction(model, dataset, batch_size: int = 500, limit: int | None = None) -> dict:
    """Reconstruction error on a split: per-pixel MSE, PSNR (dB, images in [0, 1]) and per-pixel BCE."""
    from genzoo.datasets.base import to_unit_float

    model.eval()
    device = next(model.parameters()).device
    n = len(dataset) if limit is None else min(limit, len(dataset))
    se = bce = 0.0
    psnr_sum = 0.0
    for start in range(0, n, batch_size):
        idx = list(range(start, min(start + batch_size, n)))
        x = to_unit_float(dataset.__getitems__(idx).to(device))
        r = model.reconstruct(x).clamp(0, 1)
        per_image_mse = (r - x).pow(2).flatten(1).mean(1)
        se += per_image_mse.sum().item()
        psnr_sum += (-10 * torch.log10(per_image_mse.clamp_min(1e-10))).sum().item()
        bce += F.binary_cross_entropy(r.clamp(1e-6, 1 - 1e-6), x, reduction="none").flatten(1).mean(1).sum().item()
    return {"mse": se / n, "psnr": psnr_sum / n, "bce": bce / n, "images": n}
