from __future__ import annotations

import os
from pathlib import Path

import torch


class ImageDataset(torch.utils.data.Dataset):
    """Images held in memory as one uint8 tensor (N, C, H, W); batches are fetched with one indexing op.

    `__getitems__` lets torch's DataLoader fetch a whole batch at once instead of collating N single images.
    The trainer converts to float in [0, 1] on the device, so host memory and transfers stay uint8.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None, name: str = ""):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images, self.labels, self.name = images, labels, name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i]

    def __getitems__(self, indices):
        return self.images[torch.as_tensor(indices)]


def data_root(root: str | None, name: str) -> Path:
    """Where a dataset lives: the recipe's `data.root`, else $GENZOO_DATA/<name>, else ~/.cache/genzoo/data/<name>."""
    if root:
        return Path(root).expanduser()
    if os.environ.get("GENZOO_DATA"):
        return Path(os.environ["GENZOO_DATA"]).expanduser() / name
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genzoo" / "data" / name


def to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div_(255.0)
