"""Datasets: each registered builder takes `split` (injected) plus its own options and returns an ImageDataset."""

from genzoo.datasets import (  # noqa: F401  (registers)
    cifar10,
    digits,
    hf,  # noqa: F401  (registers hf_dataset; the `datasets` package is imported only when used)
    images,  # noqa: F401  (registers celeba, image_folder)
    mnist,
    prepared,  # noqa: F401  (registers prepared)
    python,  # noqa: F401  (registers python: data given to genzoo.fit in Python)
)
from genzoo.datasets.base import ImageDataset, data_root

__all__ = ["ImageDataset", "data_root"]
