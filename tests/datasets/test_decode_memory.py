"""Memory of the decoded-image path: decoding holds no second copy of the set and pool workers write in place
(bench/vae_memory.py measures what this saves)."""

import io
import sys
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from genzoo.core.errors import GenzooError
from genzoo.datasets import images as module


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def png_items(count: int, size: int = 16, odd: int | None = None) -> list[tuple[str, bytes]]:
    """`count` distinct RGB PNGs as (name, bytes); image `odd` (if given) one pixel wider."""
    items = []
    for i in range(count):
        img = Image.new("RGB", (size + (i == odd), size), (i % 256, (7 * i) % 256, (13 * i) % 256))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        items.append((f"{i:04d}.png", buf.getvalue()))
    return items


def expected(items) -> np.ndarray:
    return np.stack([module.Decode(3)(source) for _, source in items])


def test_decoding_never_holds_a_second_copy_of_the_set():
    """One process: each image goes straight into the output. Decoding into a list first and copying it over held
    the whole set twice (and left the list's freed memory to the allocator for the rest of the run)."""
    items = png_items(400, size=32)
    module.decode_images(items[:2], module.Decode(3), "warm-up", workers=1)  # Pillow's lazy imports: not counted
    tracemalloc.start()
    try:
        out = module.decode_images(items, module.Decode(3), "mem", workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, expected(items))
    assert peak - out.nbytes < out.nbytes // 4, f"traced peak {peak} B for a {out.nbytes} B set"


@pytest.mark.parametrize("given", [None, "memmap", "array", "threads"])
def test_pool_workers_write_in_place_in_order(tmp_path, given, monkeypatch):
    """Forked workers (threads where fork is missing) write into the output themselves: a new one, a writable
    memory map (as genzoo prepare passes: written through, no shared buffer made), or a private array, filled in
    order either way; the registry of shared outputs is empty afterwards."""
    if given == "memmap":
        monkeypatch.setattr(module, "_shared_empty", lambda shape: pytest.fail("a shared copy of a writable map"))
    if given == "threads":
        monkeypatch.setattr(sys, "platform", "darwin")  # no fork: the thread pool writes into the output
    items = png_items(300)
    shape = (300, 3, 16, 16)
    out = None
    if given == "memmap":
        np.save(tmp_path / "store.npy", np.zeros(shape, np.uint8))
        out = np.load(tmp_path / "store.npy", mmap_mode="r+")[:]
    elif given == "array":
        out = np.zeros(shape, np.uint8)
    got = module.decode_images(items, module.Decode(3), "pool", workers=2, out=out)
    assert got.shape == shape and np.array_equal(got, expected(items))
    if out is not None:
        assert got is out
    if given == "memmap":  # the workers wrote through the shared map, straight into the file
        assert module._is_shared(out) and np.array_equal(np.load(tmp_path / "store.npy"), expected(items))
    assert module._SHARED == {}


@pytest.mark.parametrize("workers", [1, 2])
def test_an_odd_sized_image_is_named_by_the_pool_and_without_it(workers):
    items = png_items(200, odd=137)
    with pytest.raises(GenzooError, match=r"differ in size: '0000.png' is 16x16 but '0137.png' is 17x16"):
        module.decode_images(items, module.Decode(3), "odd", workers=workers)
    assert module._SHARED == {}
