"""Style mixing grids: the MBRCE-AAE project's figure (ALAE's style_mixing/stylemix.py), for any model with style
slots.

One grid per kind of style (coarse: the generator's 4-8 resolution levels, middle: 16-32, fine: 64 and up, as
StyleGAN): source images along the top row, target images down the left column, and in each cell the target
decoded with the source's styles of that kind put in place of its own. Images are encoded to w, which fills every
slot; `model.style_mix` swaps the slots. A model too small for a kind (a 16x16 model has no fine levels) skips it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from genzoo.core.capabilities import MixesStyles, require
from genzoo.core.errors import GenzooError, did_you_mean
from genzoo.models.base import model_name

KINDS = ("coarse", "middle", "fine")


def check_style_model(model) -> None:
    require(
        model,
        MixesStyles,
        f"model '{model_name(model)}'",
        "mix styles",
        "style mixing needs a style-based generator: train a style_alae model",
    )


@torch.no_grad()
def style_mix_grid(
    model, sources: torch.Tensor, targets: torch.Tensor, which: str, seed: int = 0, batch_size: int = 64
) -> torch.Tensor:
    """(T+1) x (S+1) images, row-major, on the CPU: a blank corner, the S sources along the top, the T targets down
    the left, and in row t, column s the target t decoded with source s's `which` styles. The generator's noise
    comes from `seed`, so a grid is reproducible."""
    check_style_model(model)
    s, t = len(sources), len(targets)
    source_w, target_w = model.encode(sources), model.encode(targets)
    mixed = model.style_mix(source_w.repeat(t, 1), target_w.repeat_interleave(s, 0), which)  # target-major
    g = torch.Generator().manual_seed(seed)
    cells = torch.cat(
        [model.decode(mixed[i : i + batch_size], generator=g).cpu() for i in range(0, len(mixed), batch_size)]
    )
    size = cells.shape[-1]
    sources, targets = (F.avg_pool2d(x.cpu(), x.shape[-1] // size) for x in (sources, targets))  # a growing model
    top = torch.cat([torch.ones_like(sources[:1]), sources])
    rows = torch.cat([targets.unsqueeze(1), cells.view(t, s, *cells.shape[1:])], dim=1)  # (T, S+1, C, H, W)
    return torch.cat([top, rows.flatten(0, 1)])


def write_style_mixes(
    model, dataset, out_dir: Path, sources: int = 5, targets: int = 5, kinds: Sequence[str] = KINDS, seed: int = 0
) -> tuple[list[Path], list[str]]:
    """Grids of the first `sources` images of `dataset` (top row) onto the next `targets` (left column), one PNG
    per kind: out_dir/stylemix-<kind>.png. Returns (written files, kinds skipped for want of slots)."""
    from genzoo.core.grids import save_grid
    from genzoo.datasets.base import to_unit_float

    check_style_model(model)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise GenzooError(
            f"unknown style kind '{unknown[0]}'{did_you_mean(unknown[0], KINDS)}", f"use some of: {', '.join(KINDS)}"
        )
    if sources < 1 or targets < 1:
        raise GenzooError(f"--sources and --targets must be at least 1, got {sources} and {targets}", "e.g. 5 and 5")
    if sources + targets > len(dataset):
        raise GenzooError(
            f"{dataset.name} has {len(dataset)} images, fewer than {sources} sources + {targets} targets",
            "lower --sources / --targets or use another --split",
        )
    present = [k for k in kinds if model.style_slots(k)]
    if not present:
        raise GenzooError(
            f"this {model.image_shape[-1]}x{model.image_shape[-1]} model has no {' or '.join(kinds)} "
            "styles (coarse: 4-8, middle: 16-32, fine: 64 and up)",
            "ask for coarse",
        )
    device = next(model.parameters()).device
    images = to_unit_float(dataset.__getitems__(list(range(sources + targets)))).to(device)
    written = [
        save_grid(
            style_mix_grid(model, images[:sources], images[sources:], kind, seed),
            Path(out_dir) / f"stylemix-{kind}.png",
            nrow=sources + 1,
        )
        for kind in present
    ]
    return written, [k for k in kinds if k not in present]
