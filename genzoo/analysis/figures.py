"""The image commands, from a model source to PNG files: `genzoo sample`, `reconstruct`, `interpolate`, `stylemix`
and `attribute` each call one function here and print what it returns.

A source is a run folder, a model folder or a Hub id (modelfile.hub.load). Images come from the dataset the model's
config.json names, at a split; the output goes next to a local source by default, and into the current folder for a
Hub source (modelfile.hub.output_path: the Hugging Face cache is never written).

The report's pictures are drawn here too: each model's sample and reconstruction grids, and the training plots
(matplotlib, Agg, imported only when they are drawn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from genzoo.analysis.report_tables import Entry, arm_of, arm_order
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


def reconstruction_grid(model, dataset, path: Path, count: int = 16, row: int = 16) -> Path:
    """The first `count` images of `dataset`, each row of originals above its row of reconstructions, as a PNG."""
    n = min(count, len(dataset))
    x = to_unit_float(dataset.__getitems__(list(range(n))).to(next(model.parameters()).device))
    with torch.no_grad():
        r = model.reconstruct(x)
    row = min(n, row)
    pairs = torch.cat([torch.cat([x[i : i + row], r[i : i + row]]) for i in range(0, n, row)])
    return save_grid(pairs.cpu(), path, nrow=row)


def model_grids(
    model, dataset, folder: Path, label: str, samples: int = 64, reconstructions: int = 16, seed: int = 0
) -> dict[str, Path]:
    """A report entry's grids: {"samples": PNG, "reconstructions": PNG (originals above)}, named after `label`."""
    stem = _safe(label)
    g = torch.Generator().manual_seed(seed)
    out = {"samples": save_grid(model.sample(samples, generator=g).cpu(), folder / f"{stem}-samples.png", nrow=8)}
    out["reconstructions"] = reconstruction_grid(
        model, dataset, folder / f"{stem}-reconstructions.png", count=reconstructions, row=8
    )
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def training_plots(entries: list[Entry], folder: Path, groups: dict[str, str] | None = None) -> list[Path]:
    """One PNG per logged quantity (losses, images/s, ...) of the entries' training logs against the step, so no two
    loss scales share an axis: a thin line per run, and with arms, the arm's colour for its runs and a thick line
    for the arm mean (at the steps every run of the arm logged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    colours = {g: f"C{i % 10}" for i, g in enumerate(arm_order(entries, groups) if groups else [])}
    paths = []
    for key in _logged_quantities(entries):
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        curves = _plot_runs(ax, entries, key, groups, colours)
        if groups:
            _plot_arm_means(ax, entries, curves, groups, colours)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{_safe(key)}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def _logged_quantities(entries: list[Entry]) -> list[str]:
    """Every numeric key of the logs but the step and epoch, in order of first appearance."""
    keys = []
    for e in entries:
        for row in e.log:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)) and k not in keys:
                    keys.append(k)
    return keys


def _plot_runs(ax, entries: list[Entry], key: str, groups: dict[str, str] | None, colours: dict) -> dict:
    """A line per run that logged `key`; returns {label: {step: value}}."""
    curves = {}
    for e in entries:
        pts = [(row["step"], row[key]) for row in e.log if "step" in row and isinstance(row.get(key), (int, float))]
        if not pts:
            continue
        curves[e.label] = dict(pts)
        if groups:
            ax.plot(*zip(*pts), color=colours[arm_of(e, groups)], linewidth=0.6, alpha=0.45)
        else:
            ax.plot(*zip(*pts), label=e.label, linewidth=1.2)
    return curves


def _plot_arm_means(ax, entries: list[Entry], curves: dict, groups: dict[str, str], colours: dict) -> None:
    """Each arm's mean over its runs, at the steps all of them logged."""
    for g, colour in colours.items():
        members = [curves[e.label] for e in entries if arm_of(e, groups) == g and e.label in curves]
        if not members:
            continue
        steps = sorted(set.intersection(*(set(m) for m in members)))
        if steps:
            mean = [sum(m[s] for m in members) / len(members) for s in steps]
            ax.plot(steps, mean, color=colour, linewidth=2, label=f"{g} (mean of {len(members)})")
