"""Parzen-window log-likelihood (Breuleux et al.; the protocol of the GAN and AAE papers, the AAE paper).

A Gaussian kernel density with one bandwidth sigma is put on `samples` images drawn from the model (10,000);
sigma is chosen from a log-spaced grid by the mean log-likelihood of `validation_count` held-out images (1,000: the
data's 'validation' split where it has one, as MNIST with data.validation=1000 is the AAE paper's 59k/1k split,
else the
end of the train split); the result is the mean log-likelihood of the test images (10,000) under that density,
± its standard error (std / sqrt(n)), in nats, pixels in [0, 1]:

    log p(x) = logmeanexp_i(-||x - s_i||^2 / (2 sigma^2)) - D log(sigma sqrt(2 pi))

Batched: squared distances for chunks of images against chunks of samples (float64), reduced by a running
log-sum-exp, so memory stays at one chunk x one chunk whatever the counts; the distances of the validation images
serve every sigma of the grid at once.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import METRICS, MetricValue


def _flat(dataset, idx: list[int], device) -> torch.Tensor:
    return dataset.__getitems__(idx).to(device).flatten(1).double().div_(255.0)


@torch.no_grad()
def parzen_log_likelihood(
    x: torch.Tensor, samples: torch.Tensor, sigmas, x_chunk: int = 500, sample_chunk: int = 2500
) -> torch.Tensor:
    """Per-image log-likelihood under the Parzen density on `samples`, for every sigma: (len(sigmas), len(x))."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64, device=x.device).reshape(-1, 1, 1)
    d = x.shape[1]
    x_chunk = max(1, min(x_chunk, 2**24 // (sigmas.shape[0] * sample_chunk)))  # at most 16M doubles at a time
    out = []
    for i in range(0, len(x), x_chunk):
        xi = x[i : i + x_chunk]
        running = torch.full((sigmas.shape[0], len(xi)), -math.inf, dtype=torch.float64, device=x.device)
        xx = xi.pow(2).sum(1, keepdim=True)
        for j in range(0, len(samples), sample_chunk):
            sj = samples[j : j + sample_chunk]
            sq = (xx + sj.pow(2).sum(1) - 2 * xi @ sj.T).clamp_min_(0)  # (chunk, samples chunk)
            running = torch.logaddexp(running, torch.logsumexp(-sq / (2 * sigmas**2), dim=2))
        out.append(running - math.log(len(samples)) - d * torch.log(sigmas[:, :, 0] * math.sqrt(2 * math.pi)))
    return torch.cat(out, dim=1)


@torch.no_grad()
def generate_flat(model, count: int, seed: int, batch_size: int = 500) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat(
        [
            model.sample(min(batch_size, count - i), generator=g).flatten(1).double()
            for i in range(0, count, batch_size)
        ]
    )


def _validation_data(splits: Callable, name: str | None):
    """The split sigma is chosen on: the one named, else the data's held-out 'validation' split (e.g. MNIST with
    data.validation=1000, the AAE paper's 59k/1k), else the training split, whose last images are then used."""
    if name is not None:
        return splits(name)
    try:
        return splits("validation")
    except GenzooError:
        return splits("train")


@METRICS.register(
    "parzen",
    values={
        # the standard error and the chosen sigma describe the estimate: kept in the result, out of the tables
        "log_likelihood": MetricValue("Parzen log-likelihood", better="higher", unit="nats", headline=True),
    },
    sample_based=True,
)
@torch.no_grad()
def parzen(
    model,
    dataset,
    limit: int | None = None,
    splits: Callable | None = None,
    samples: int = 10000,
    count: int = 10000,
    validation_split: str | None = None,
    validation_count: int = 1000,
    sigma_min: float = 0.05,
    sigma_max: float = 1.0,
    sigma_steps: int = 30,
    sigma: float | None = None,
    seed: int = 0,
) -> dict:
    """Parzen-window log-likelihood (nats) of the split: sigma cross-validated on held-out images, mean ± s.e."""
    model.eval()
    device = next(model.parameters()).device
    n = min(count, len(dataset), limit or count)
    n_samples = min(samples, limit or samples)
    if n < 2 or n_samples < 1:
        raise GenzooError(f"Parzen needs test images and samples, got {n} and {n_samples}", "raise count / --limit")
    gen = generate_flat(model, n_samples, seed).to(device)
    protocol = {
        "samples": n_samples,
        "images": n,
        "seed": seed,
        "pixels": "[0, 1] (uint8 / 255); samples not quantised",
    }
    if sigma is None:
        if splits is None:
            raise GenzooError(
                "choosing sigma needs the validation split", "run through `genzoo eval`, or set parzen.sigma"
            )
        val_data = _validation_data(splits, validation_split)
        v = min(validation_count, len(val_data), limit or validation_count)
        val_idx = list(range(len(val_data) - v, len(val_data)))  # the end of the split, as the AAE paper held it out
        grid = np.geomspace(sigma_min, sigma_max, sigma_steps)
        val_ll = parzen_log_likelihood(_flat(val_data, val_idx, device), gen, grid).mean(1).cpu().numpy()
        best = int(np.argmax(val_ll))
        sigma = float(grid[best])
        protocol.update(
            validation={
                "split": val_data.name or validation_split,
                "images": v,
                "indices": f"{val_idx[0]}..{val_idx[-1]}",
            },
            sigma_grid=[float(s) for s in grid],
            validation_ll=[float(s) for s in val_ll],
            sigma_at_grid_edge=best in (0, len(grid) - 1),
        )
    ll = (
        torch.cat(
            [
                parzen_log_likelihood(_flat(dataset, list(range(i, min(i + 2000, n))), device), gen, [sigma])[0]
                for i in range(0, n, 2000)
            ]
        )
        .cpu()
        .numpy()
    )
    protocol["sigma"] = sigma
    return {
        "log_likelihood": float(ll.mean()),
        "standard_error": float(ll.std() / math.sqrt(n)),
        "sigma": sigma,
        "images": n,
        "protocol": protocol,
    }
