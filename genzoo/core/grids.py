"""Image grids and files (PIL only, no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import torch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] (N, C, H, W) -> uint8 (N, H, W, C) on the CPU."""
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def make_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> one (C, H', W') image with `nrow` images per row and a white border."""
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = x.new_ones(c, rows * (h + padding) + padding, nrow * (w + padding) + padding)
    for i in range(n):
        r, k = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid


def save_image(x: torch.Tensor, path: Path, upscale: int = 1) -> Path:
    """Save one (C, H, W) image in [0, 1] as PNG, written atomically."""
    from PIL import Image

    from genzoo.core.io import atomic_path

    array = to_uint8(x.unsqueeze(0))[0].numpy()
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return path


def save_grid(x: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    """Save a grid of images; small images (digits are 8x8) are upscaled so the PNG is viewable."""
    upscale = max(1, 64 // x.shape[-1])
    return save_image(make_grid(x, nrow), path, upscale=upscale)


def save_images(x: torch.Tensor, folder: Path, start: int = 0) -> list[Path]:
    """Save each image as folder/NNNNNN.png (the layout FID tools read)."""
    folder = Path(folder)
    return [save_image(img, folder / f"{start + i:06d}.png") for i, img in enumerate(x)]
