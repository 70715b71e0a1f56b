"""Progressive growing: which resolution, batch size and blend factor a given training step uses.

The schedule is a pure function of the step number, so a resumed run lands in the same level and blend without
storing either. Level i trains at `start_resolution * 2**i`; every level but the last lasts `images_per_level`
images (rounded up to whole batches of that level's size); the last one runs until training ends. During the
first `transition` fraction of a level (all but the first) the new block is blended in with ALAE's curve
blend = sin(t*pi - pi/2)/2 + 1/2, t going 0 -> 1, and the real images are blended the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genzoo.core.errors import GenzooError
from genzoo.core.recipe import GrowthSpec


@dataclass(frozen=True)
class Level:
    index: int
    resolution: int
    batch_size: int
    first_step: int
    end_step: int | None  # first step of the next level; None for the last level


class GrowthSchedule:
    def __init__(self, spec: GrowthSpec, max_resolution: int, default_batch: int, dataset_size: int, processes: int):
        start = spec.start_resolution
        if start < 1 or not _doubles_of(start, max_resolution):
            raise GenzooError(
                f"train.growth.start_resolution {start} does not reach the data's resolution "
                f"{max_resolution} by doublings",
                "use a power-of-two fraction of it, e.g. 4",
            )
        if (spec.images_per_level is None) == (spec.epochs_per_level is None):
            raise GenzooError(
                "train.growth needs exactly one of images_per_level and epochs_per_level",
                "set e.g. train.growth.epochs_per_level: 30",
            )
        if not 0.0 <= spec.transition <= 1.0:
            raise GenzooError(f"train.growth.transition must lie in [0, 1], got {spec.transition}", "e.g. 0.5")
        self.spec = spec
        self.resolutions = [start << i for i in range((max_resolution // start).bit_length())]
        self.images_per_level = (
            spec.images_per_level
            if spec.images_per_level is not None
            else max(1, round(spec.epochs_per_level * dataset_size))
        )
        by_world = self._table(spec.batch_size_by_processes.get(str(processes), {}), "batch_size_by_processes")
        per_res = self._table(spec.batch_size, "batch_size")
        self.levels: list[Level] = []
        step = 0
        for i, r in enumerate(self.resolutions):
            batch = by_world.get(r, per_res.get(r, default_batch))
            last = i == len(self.resolutions) - 1
            end = None if last else step + math.ceil(self.images_per_level / batch)
            self.levels.append(Level(i, r, batch, step, end))
            step = end if end is not None else step
        self.lr = {r: float(v) for r, v in self._table(spec.lr, "lr").items()}

    def _table(self, table: dict, name: str) -> dict[int, object]:
        """A per-resolution table with int keys. Keys above the top level are dropped, so that a recipe's table
        for 4..256 serves a shorter run on smaller data (data.size=16); a key off the chain of levels is a typo."""
        table = _int_keys(table, name)
        for key in table:
            if not _doubles_of(self.resolutions[0], key):
                raise GenzooError(
                    f"train.growth.{name} given for resolution {key}, which is not a level "
                    f"({', '.join(map(str, self.resolutions))}, ...)",
                    "fix the resolution keys",
                )
        return {key: value for key, value in table.items() if key <= self.resolutions[-1]}

    def level_at(self, step: int) -> Level:
        for level in self.levels:
            if level.end_step is None or step < level.end_step:
                return level
        raise AssertionError("unreachable: the last level has no end")

    def blend(self, step: int) -> float:
        """Blend factor of the newest block at `step` (1: fully in)."""
        level = self.level_at(step)
        span = self.spec.transition * self.images_per_level
        if level.index == 0 or span <= 0:
            return 1.0
        t = (step - level.first_step) * level.batch_size / span
        return 1.0 if t >= 1.0 else math.sin(t * math.pi - math.pi / 2) / 2 + 0.5

    def steps_for_images(self, images: float) -> int:
        """Steps needed to show `images` images in all (`train.epochs` x dataset size)."""
        for level in self.levels:
            span = None if level.end_step is None else (level.end_step - level.first_step) * level.batch_size
            if span is None or images <= span:
                return level.first_step + math.ceil(images / level.batch_size)
            images -= span
        raise AssertionError("unreachable")

    def images_before(self, step: int) -> int:
        """Images shown by the start of `step` (for the epoch count in logs)."""
        total = 0
        for level in self.levels:
            stop = step if level.end_step is None else min(step, level.end_step)
            if stop <= level.first_step:
                break
            total += (stop - level.first_step) * level.batch_size
        return total


def _doubles_of(start: int, resolution: int) -> bool:
    """Whether `resolution` is `start` doubled zero or more times."""
    return resolution >= start and resolution % start == 0 and (resolution // start) & (resolution // start - 1) == 0


def _int_keys(mapping: dict, what: str) -> dict[int, object]:
    out = {}
    for k, v in mapping.items():
        try:
            out[int(k)] = v
        except ValueError:
            raise GenzooError(
                f"train.growth.{what} key '{k}' is not a number", "key it by resolution, e.g. 64: 32"
            ) from None
    return out


def growth_schedule(spec: GrowthSpec | None, model, data, recipe, world: int) -> GrowthSchedule | None:
    """The recipe's schedule (None without train.growth), checked against what the model and data can do: the model
    grows (set_growth) and has a level at every resolution, the dataset serves lower resolutions."""
    from genzoo.core.capabilities import Grows, ServesResolutions, require

    if spec is None:
        return None
    name = recipe.model["name"]
    require(
        model,
        Grows,
        f"model '{name}'",
        "train with 'train.growth'",
        "remove the train.growth section (progressive growing needs e.g. style_alae)",
    )
    what = f"dataset '{recipe.data['name']}'"
    require(data, ServesResolutions, what, "grow", "use an image dataset, or remove train.growth")
    schedule = GrowthSchedule(spec, data.image_shape[-1], recipe.train.batch_size, len(data), world)
    missing = [r for r in schedule.resolutions if r not in model.resolutions]
    if missing:
        raise GenzooError(
            f"train.growth starts at {spec.start_resolution}, but model '{name}' has no level at "
            f"{missing[0]} (its levels: {', '.join(map(str, model.resolutions))})",
            "raise train.growth.start_resolution or lower the model's start_resolution",
        )
    return schedule


def blend_reals(x, blend: float):
    """Real images blended as the model's new block (ALAE): during a transition, a mix of themselves and their
    2x-downsampled, re-upsampled selves."""
    import torch

    if blend < 1.0:
        coarse = torch.nn.functional.avg_pool2d(x, 2).repeat_interleave(2, -2).repeat_interleave(2, -1)
        x = torch.lerp(coarse, x, blend)
    return x
