from __future__ import annotations

import torch

from genzoo.core.errors import GenzooError


class EpochBatches:
    """Deterministic, resumable, sharded batch order.

    Epoch e shuffles with a generator seeded from (seed, e) only, so the order never depends on the global RNG,
    on how many times training was stopped, or on the number of processes: each global batch of `batch_size`
    indices is cut into `world` equal slices and process `rank` takes its slice. Incomplete batches are dropped.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed, self.rank, self.world = size, batch_size, seed, rank, world
        self.per_process = batch_size // world

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size

    def epoch(self, epoch: int, start: int = 0):
        """Yield (batch index, index tensor for this process) for epoch `epoch`, from batch `start` on."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=g)
        for b in range(start, self.batches_per_epoch):
            lo = b * self.batch_size + self.rank * self.per_process
            yield b, order[lo : lo + self.per_process]


def batch_stream(dataset, batches: EpochBatches, epoch: int, start: int, num_workers: int = 0, pin: bool = False):
    """Yield (batch index, uint8 images) for one epoch. In-memory data is fetched with one indexing op per batch;
    `num_workers > 0` reads through torch's DataLoader (for datasets that decode files). With `pin` (training on a
    GPU) batches come in page-locked memory, so the copy to the device can overlap (non_blocking)."""
    if num_workers == 0:
        for b, idx in batches.epoch(epoch, start):
            images = dataset.__getitems__(idx)
            yield b, images.pin_memory() if pin else images
        return
    plan = list(batches.epoch(epoch, start))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=[idx.tolist() for _, idx in plan],
        num_workers=num_workers,
        collate_fn=_as_batch,
        pin_memory=pin,
        generator=torch.Generator(),
    )  # never draws from the global RNG
    for (b, _), images in zip(plan, loader):
        yield b, images


def _as_batch(items):
    return items if isinstance(items, torch.Tensor) else torch.stack(list(items))


def check_batch_sizes(sizes, world: int, micro_batches: int, images: int, dataset: str, growing: bool) -> None:
    """Every global batch size splits evenly into processes x micro-batches and fits in the training set."""
    for batch in sorted(sizes):
        if batch % (world * micro_batches):
            raise GenzooError(
                f"batch size {batch} does not split into {world} processes x {micro_batches} micro-batches",
                f"use a multiple of {world * micro_batches}" + (" in train.growth.batch_size" if growing else ""),
            )
        if images < batch:
            raise GenzooError(
                f"dataset {dataset} has {images} training images, fewer than the batch size {batch}",
                "lower train.growth.batch_size" if growing else "lower train.batch_size",
            )
