from __future__ import annotations

import torch

from genzoo.core.registry import DATASETS
from genzoo.datasets.base import ImageDataset


@DATASETS.register("digits")
def digits(split: str, test_size: int = 297, size: int | None = None) -> ImageDataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images): ships with the install, needs no download.
    `size` resizes them (bilinear), e.g. 16 or 32 for quick progressive-growing runs."""
    from sklearn.datasets import load_digits

    from genzoo.core.errors import GenzooError
    from genzoo.datasets.images import pad_and_resize

    bunch = load_digits()
    # 0..16 grey levels -> 0..255, as (N, 1, 8, 8) uint8
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round()).to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target)
    if split not in ("train", "test"):
        raise GenzooError(f"dataset 'digits' has splits train and test, not '{split}'", "use --split train or test")
    cut = len(images) - test_size  # the last test_size images are held out (fixed, no shuffling)
    part = slice(0, cut) if split == "train" else slice(cut, None)
    return pad_and_resize(ImageDataset(images[part], labels[part], name=f"digits/{split}"), size=size)
