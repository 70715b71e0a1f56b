"""The image commands, from a model source to PNG files: `genzoo sample`, `reconstruct`, `interpolate`, `stylemix`
and `attribute` each call one function here and print what it returns.

A source is a run folder, a model folder or a Hub id (modelfile.hub.load). Images come from the dataset the model's
config.json names, at a split; the output goes next to a local source by default, and into the current folder for a
Hub source (modelfile.hub.output_path: the Hugging Face cache is never written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.grids import save_grid
from genzoo.datasets.base import to_unit_float
from genzoo.metrics.evaluate import dataset_for
from genzoo.modelfile.hub import load, output_path

GRID_MOST = 256  # the sample grid holds the first 256 images; the rest only go to images_dir


def write_samples(
    source,
    count: int = 64,
    *,
    out: Path | None = None,
    images_dir: Path | None = None,
    seed: int = 0,
    nrow: int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    sampler: str = "prior",
) -> Path:
    """`count` samples: a grid PNG of the first 256 at `out` (default: <source>/samples.png) and, with
    `images_dir`, every one as its own PNG there. Decoded a batch at a time, so any count fits in memory."""
    from genzoo.core.grids import save_images

    if count < 1 or batch_size < 1:
        raise GenzooError(
            f"--count and --batch-size must be at least 1, got {count}, {batch_size}", "pass positive values"
        )
    model = load(source, device=device, sampler=sampler)
    generator = torch.Generator().manual_seed(seed)
    shown = min(count, GRID_MOST)
    total = count if images_dir else shown
    grid = []
    for start in range(0, total, batch_size):
        images = model.sample(min(batch_size, total - start), generator=generator).cpu()
        if start < shown:
            grid.append(images[: shown - start])
        if images_dir:
            save_images(images, images_dir, start=start)
    return save_grid(torch.cat(grid), out or output_path(source, "samples.png"), nrow=nrow)


def write_reconstructions(
    source, split: str = "test", count: int = 16, *, out: Path | None = None, data_root=None, device: str = "cpu"
) -> Path:
    """The split's first `count` images, each row of 16 above its reconstructions (default: <source>/
    reconstructions.png)."""
    from genzoo.analysis.report import reconstruction_grid

    model = load(source, device=device)
    out = out or output_path(source, "reconstructions.png")
    return reconstruction_grid(model, dataset_for(model, split, data_root), out, count=count, row=16)


def write_interpolation(
    source,
    inputs: Sequence[str] = (),
    *,
    corners: bool = False,
    steps: int = 8,
    split: str | None = None,
    seed: int = 0,
    out: Path | None = None,
    data_root=None,
    device: str = "cpu",
) -> Path:
    """A line of `steps` images between two end points, or with `corners` the steps x steps grid between four
    (default: <source>/interpolation.png). End points: image files, dataset indices with `split`, or none (random
    codes from the prior, drawn with `seed`)."""
    from genzoo.analysis.interpolate import end_codes, interpolate

    model = load(source, device=device)
    codes = end_codes(model, inputs, corners=corners, split=split, seed=seed, data_root=data_root)
    images = interpolate(model, codes, steps, corners=corners)
    return save_grid(images, out or output_path(source, "interpolation.png"), nrow=steps)


def write_stylemix(
    source,
    split: str = "test",
    sources: int = 5,
    targets: int = 5,
    kinds: Sequence[str] = ("coarse", "middle", "fine"),
    *,
    seed: int = 0,
    out: Path | None = None,
    data_root=None,
    device: str = "cpu",
) -> tuple[list[Path], list[str], int]:
    """Style mixing grids of a style-based model, one PNG per kind in `out` (default: <source>/stylemix). Returns
    (the files written, the kinds skipped for want of levels, the model's resolution)."""
    from genzoo.analysis.stylemix import check_style_model, write_style_mixes

    model = load(source, device=device)
    check_style_model(model)  # before reading any data
    data = dataset_for(model, split, data_root)
    out = out or output_path(source, "stylemix")
    written, skipped = write_style_mixes(model, data, out, sources, targets, kinds, seed)
    return written, skipped, model.image_shape[-1]


def write_attribute_change(
    source,
    attribute: str,
    *,
    remove: bool = False,
    threshold: float = 0.25,
    steps: int = 6,
    count: int = 8,
    split: str = "test",
    fit_split: str = "train",
    limit: int | None = None,
    out: Path | None = None,
    data_root=None,
    device: str = "cpu",
) -> tuple[Path, int, int]:
    """Add (or `remove`) a labelled attribute to the split's first `count` images: one row per image from its
    reconstruction to the changed image (default: <source>/attribute-<attribute>.png). The attribute's direction is
    the mean-code difference over `fit_split`. Returns (the PNG, the code bits changed, the code's bits)."""
    from genzoo.core.capabilities import EditsAttributes, require
    from genzoo.models.base import model_name

    model = load(source, device=device)
    require(model, EditsAttributes, f"model '{model_name(model)}'", "change attributes", "use an lbae model")
    fit = dataset_for(model, fit_split, data_root)
    direction = model.attribute_direction(fit, attribute=fit.label_index(attribute), limit=limit)
    data = dataset_for(model, split, data_root)
    x = to_unit_float(data.__getitems__(list(range(min(count, len(data))))).to(next(model.parameters()).device))
    images = model.change_attribute(x, direction, threshold=threshold, remove=remove, steps=steps)
    if steps <= 0:  # each reconstruction beside its changed version
        images = torch.stack([model.reconstruct(x), images], dim=1)
    out = out or output_path(source, f"attribute-{attribute}.png")
    save_grid(images.flatten(0, 1).cpu(), out, nrow=images.shape[1])
    return out, int((direction.abs() > threshold).sum()), len(direction)
