"""Datasets: each registered builder takes `split` (injected) plus its own options and returns an ImageDataset."""

from genzoo.datasets.base import ImageDataset, data_root
from genzoo.datasets import digits, mnist  # noqa: F401  (registers)
from genzoo.datasets import images  # noqa: F401  (registers cifar10, celeba, image_folder)
from genzoo.datasets import prepared  # noqa: F401  (registers prepared)

__all__ = ["ImageDataset", "data_root"]
