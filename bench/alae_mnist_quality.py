"""Quality of short MNIST runs: pixel MMD^2 of 1000 samples vs 1000 test images (Gaussian kernel, median
bandwidth of the pooled 2000) and reconstruction MSE on 2000 test images (BENCHMARKS.md, MLP ALAE section).

    python bench/alae_mnist_quality.py RUN [RUN ...]  # MNIST: $MNIST_ROOT, else $GENZOO_DATA/mnist
"""

import os
import sys

import torch

import genzoo
from genzoo.core.registry import DATASETS
from genzoo.datasets.base import to_unit_float


def mmd2(x, y):
    z = torch.cat([x, y]).flatten(1).double()
    d = torch.cdist(z, z).pow(2)
    sigma2 = d[d > 0].median()
    k = torch.exp(-d / (2 * sigma2))
    n = len(x)
    return (k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()).item()


test = DATASETS.get("mnist")("test", root=os.environ.get("MNIST_ROOT"), download=False)
real = to_unit_float(test.__getitems__(list(range(2000))))
for run in sys.argv[1:]:
    m = genzoo.load(run).eval()
    with torch.no_grad():
        s = m.sample(1000, generator=torch.Generator().manual_seed(0))
        rec = torch.cat([m.reconstruct(real[i : i + 500]) for i in range(0, 2000, 500)])
    print(run, "mmd2", round(mmd2(s, real[:1000]), 4), "mse", round((rec - real).pow(2).mean().item(), 4))
