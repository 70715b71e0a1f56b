"""Interpolation in code space, for every architecture (it needs only `encode` and `decode`).

Two layouts: a straight line between two codes (`line_codes`), and the four-corner grid of the MBRCE-AAE README
(the MBRCE-AAE project): an N x N grid, bilinear in code space, whose top-left, top-right, bottom-left and
bottom-right cells
are the four given codes (`corner_grid`). The end points come from images (files resized to the model's image
shape, or dataset indices) through `model.encode`, or from the prior; a model whose decoder works on codes other
than the prior's draws maps them with `model.code_from_prior(z)` (ALAE: w = F(z)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from genzoo.core.capabilities import DrawsCodePaths, can
from genzoo.core.errors import GenzooError


def load_images(paths: Sequence[str | Path], image_shape: Sequence[int]) -> torch.Tensor:
    """Image files -> (N, C, H, W) floats in [0, 1] of the model's image shape: converted to grey or RGB,
    centre-cropped to the model's aspect ratio, then resized (Lanczos) when the size differs."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = image_shape
    if c not in (1, 3):
        raise GenzooError(f"cannot read image files for a model with {c} channels", "use dataset indices (--split)")
    out = []
    for path in map(Path, paths):
        if not path.is_file():
            raise GenzooError(f"image '{path}' does not exist", "give paths to image files, or indices with --split")
        try:
            with Image.open(path) as opened:
                image = opened.convert("L" if c == 1 else "RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise GenzooError(f"'{path}' is not a readable image ({exc})", "give PNG or JPEG files") from None
        iw, ih = image.size
        if iw * h != ih * w:  # centre crop to the model's aspect ratio
            cw, ch = (round(ih * w / h), ih) if iw * h > ih * w else (iw, round(iw * h / w))
            left, top = (iw - cw) // 2, (ih - ch) // 2
            image = image.crop((left, top, left + cw, top + ch))
        if image.size != (w, h):
            image = image.resize((w, h), Image.Resampling.LANCZOS)
        t = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(h, w, c).permute(2, 0, 1)
        out.append(t.float() / 255)
    return torch.stack(out)


@torch.no_grad()
def end_codes(
    model, inputs: Sequence[str], *, corners: bool = False, split: str | None = None, seed: int = 0, data_root=None
) -> torch.Tensor:
    """The codes of the end points (2 for a line, 4 for corners): `inputs` are image files, or with `split` indices
    into that split of the model's dataset; no inputs: codes drawn from the prior with `seed`."""
    from genzoo.datasets.base import to_unit_float
    from genzoo.metrics.evaluate import dataset_for
    from genzoo.models.base import prior_codes

    device, need = next(model.parameters()).device, 4 if corners else 2
    if not inputs:
        return prior_codes(model, need, seed).to(device)
    if len(inputs) != need:
        raise GenzooError(
            f"{'--corners needs' if corners else 'a line needs'} {need} inputs, got {len(inputs)}",
            f"give {need} images or indices, or none for random codes",
        )
    if split is None:
        return model.encode(load_images(inputs, model.image_shape).to(device))
    data = dataset_for(model, split, data_root)
    if not all(i.isdigit() and int(i) < len(data) for i in inputs):
        raise GenzooError(
            f"with --split the inputs are indices from 0 to {len(data) - 1}, got {' '.join(inputs)}",
            "give image indices, or drop --split to give image files",
        )
    return model.encode(to_unit_float(data.__getitems__([int(i) for i in inputs])).to(device))


def line_codes(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` codes evenly spaced on the straight line from a to b (both ends included), shape (steps, *a.shape)."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(-1, *[1] * a.dim())
    return (1 - t) * a + t * b


def corner_grid(top_left, top_right, bottom_left, bottom_right, n: int) -> torch.Tensor:
    """N x N codes, row-major, bilinear between four corner codes: cell (r, c) with u = c/(n-1), v = r/(n-1) is
    (1-v)(1-u) TL + (1-v)u TR + v(1-u) BL + vu BR. The corner cells are the corner codes exactly."""
    corners = torch.stack([top_left, top_right, bottom_left, bottom_right])
    s = torch.linspace(0, 1, n, dtype=corners.dtype, device=corners.device)
    v, u = s.view(n, 1).expand(n, n).reshape(-1), s.view(1, n).expand(n, n).reshape(-1)
    weights = torch.stack([(1 - v) * (1 - u), (1 - v) * u, v * (1 - u), v * u], dim=1)  # (n*n, 4)
    return (weights.view(-1, 4, *[1] * top_left.dim()) * corners.unsqueeze(0)).sum(1)


@torch.no_grad()
def decode_codes(model, codes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([model.decode(codes[i : i + batch_size]).cpu() for i in range(0, len(codes), batch_size)])


@torch.no_grad()
def interpolate(model, codes: torch.Tensor, steps: int, corners: bool = False) -> torch.Tensor:
    """Images along the line between codes[0] and codes[1] (steps of them), or the steps x steps corner grid of
    codes[0..3] (top-left, top-right, bottom-left, bottom-right); (N, C, H, W) in [0, 1] on the CPU."""
    need = 4 if corners else 2
    if len(codes) != need:
        raise GenzooError(
            f"interpolation needs {need} end points{' with --corners' if corners else ''}, got {len(codes)}",
            f"give {need} images or indices (or none, for random codes)",
        )
    if steps < 2:
        raise GenzooError(f"--steps must be at least 2, got {steps}", "e.g. --steps 8")
    if corners:
        path = corner_grid(*codes, steps)
    elif can(model, DrawsCodePaths):  # codes that leave no straight lines (LBAE's binary codes): its own path
        path = model.codes_between(codes[0], codes[1], torch.linspace(0, 1, steps, dtype=torch.float64))
    else:
        path = line_codes(codes[0], codes[1], steps)
    return decode_codes(model, path)
