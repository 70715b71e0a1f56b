from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from genzoo.core.errors import GenzooError


class ImageDataset(torch.utils.data.Dataset):
    """Images held in memory as one uint8 tensor (N, C, H, W); batches are fetched with one indexing op.

    `__getitems__` lets torch's DataLoader fetch a whole batch at once instead of collating N single images.
    The trainer converts to float in [0, 1] on the device, so host memory and transfers stay uint8.
    """

    files: list[str] | None = None  # the source file of each image, where it came from files
    label_names: list[str] | None = None  # the name of each label value or attribute column, where known

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

    def label_index(self, label: str) -> int:
        """The index of a label column or class given by its name (CelebA: 'Eyeglasses') or by its index ('15'). A
        name is looked up first, so a label named '3' is that label even where it is not column 3."""
        from genzoo.core.errors import did_you_mean

        names = self.label_names or []
        if label in names:
            return names.index(label)
        if label.isdigit():
            return int(label)
        raise GenzooError(
            f"no attribute '{label}' in the labels of {self.name}{did_you_mean(label, names)}",
            f"give an index or one of: {', '.join(names) or '(the labels have no names)'}",
        )

    def at_resolution(self, resolution: int) -> ImageDataset:
        """These images at `resolution` (the size divided by a power of two) by repeated exact 2x2 box means
        (`halve`), as progressive growing reads them; each level is computed once and kept on this object."""
        h, size = self.images.shape[-2:]
        if resolution == size:
            return self
        levels = [size >> k for k in range(1, size.bit_length()) if size % (1 << k) == 0]
        if h != size or resolution not in levels:
            raise GenzooError(
                f"{self.name or 'dataset'}: {size}x{h} images cannot be box-averaged to {resolution}x{resolution}",
                f"use one of {levels} (square images only)",
            )
        levels = self.__dict__.setdefault("_levels", {})
        if resolution not in levels:
            above = self.at_resolution(resolution * 2)
            levels[resolution] = ImageDataset(
                torch.from_numpy(halve(above.images.numpy())), self.labels, name=self.name
            )
            levels[resolution].files, levels[resolution].label_names = self.files, self.label_names
        return levels[resolution]


def halve(images: np.ndarray, chunk: int = 16) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, C, H/2, W/2): exact means of 2x2 blocks, rounded half to even, in batched chunks.

    Integer arithmetic: with s the sum of a block, (s + 1 + (s // 4 is odd)) // 4 is s / 4 rounded half to even, as
    torch.round(avg_pool2d(x.float(), 2)) gives. Rounding rather than ALAE's truncating cast keeps brightness
    unbiased (truncation loses 0.375 on average at every halving). numpy, single-threaded, on chunks of 16 images
    that stay in cache: 0.1 ms per 256x256 image here, where torch's two threads were 30x slower on a busy machine.
    """
    n, c, h, w = images.shape
    out = np.empty((n, c, h // 2, w // 2), dtype=np.uint8)
    for i in range(0, n, chunk):
        x = images[i : i + chunk]
        s = np.add(x[..., 0::2, :], x[..., 1::2, :], dtype=np.uint16)  # row pairs first: contiguous adds
        s = s[..., 0::2] + s[..., 1::2]
        s += 1 + ((s >> 2) & 1)
        np.right_shift(s, 2, out=out[i : i + chunk], casting="unsafe")
    return out


def data_root(root: str | None, name: str) -> Path:
    """Where a dataset lives: the recipe's `data.root`, else $GENZOO_DATA/<name>, else ~/.cache/genzoo/data/<name>."""
    if root:
        return Path(root).expanduser()
    if os.environ.get("GENZOO_DATA"):
        return Path(os.environ["GENZOO_DATA"]).expanduser() / name
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genzoo" / "data" / name


def to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div_(255.0)


def from_torch(dataset, name: str = "python") -> ImageDataset:
    """A user's torch Dataset (items: an image, or a tuple whose first element is one) as an in-memory ImageDataset:
    uint8 tensors (C, H, W) are taken as they are, float tensors in [0, 1] are quantised, PIL images converted.
    genzoo trains from memory, so the images are read once here."""
    if isinstance(dataset, ImageDataset):
        return dataset
    images = []
    for i in range(len(dataset)):
        item = dataset[i]
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, torch.Tensor):
            a = np.asarray(x, dtype=np.uint8)  # PIL image or array, (H, W) or (H, W, C)
            x = torch.from_numpy(a[..., None] if a.ndim == 2 else a).permute(2, 0, 1)
        elif x.is_floating_point():
            if x.min() < 0 or x.max() > 1:
                raise GenzooError(
                    f"item {i} of the dataset holds floats outside [0, 1] "
                    f"({float(x.min()):.3g}..{float(x.max()):.3g})",
                    "give uint8 images or floats in [0, 1] (undo any normalisation)",
                )
            x = (x * 255).round().to(torch.uint8)
        if x.dim() == 2:
            x = x[None]
        images.append(x.to(torch.uint8))
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) != 1:
        raise GenzooError(f"the dataset's images differ in shape ({sorted(shapes)[:3]})", "resize them to one size")
    return ImageDataset(torch.stack(images).contiguous(), name=name)
