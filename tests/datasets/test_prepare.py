"""`genzoo prepare` and the `prepared` dataset: odd inputs, exact box-averaged levels, order and splits, broken files,
resume after a kill, verification, the memory-mapped dataset, and ImageDataset.at_resolution.

Images are written with Pillow into tmp_path; the store is tiny (16x16 top level), so all of this runs in seconds.
"""

import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets import ImageDataset
from genzoo.datasets import prepared as module
from genzoo.datasets.base import halve
from genzoo.datasets.images import _as_mode, centre_square
from tests.helpers.cli import run_cli
from tests.helpers.recipes import write_recipe

TOP = 16


def noise(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """12 JPEGs and PNGs named 0..11 in a non-padded numbering (so 10 sorts after 9), of mixed sizes."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    root.mkdir()
    for i in range(12):
        Image.fromarray(noise(rng, 20 + i, 24)).save(root / (f"{i}.png" if i % 3 else f"{i}.jpg"))
    return root


def prepare(source, out, **kw):
    kw = {"max_resolution": TOP, "min_resolution": 4, "test_count": 2, "say": lambda m: None, **kw}
    return module.prepare_store(source, out, **kw)


def level(store, r):
    return np.load(store / f"{r}.npy", mmap_mode="r", allow_pickle=False)


def reference(path):
    """The top level of one file, computed here with Pillow directly: RGB, centre square, Lanczos."""
    with Image.open(path) as img:
        img.load()
        img = centre_square(_as_mode(img, 3), None).resize((TOP, TOP), Image.LANCZOS)
    return np.asarray(img).transpose(2, 0, 1)


def test_odd_inputs_become_rgb_squares(tmp_path):
    root = tmp_path / "odd"
    root.mkdir()
    Image.new("L", (30, 20), 100).save(root / "grey.png")
    palette = Image.new("P", (20, 40), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.save(root / "palette.png")
    Image.new("RGBA", (24, 24), (255, 0, 0, 0)).save(root / "clear.png")  # fully transparent: white
    Image.fromarray(np.full((18, 18), 200 * 257, np.uint16)).save(root / "deep.png")  # 16-bit
    Image.new("CMYK", (20, 20), (0, 0, 0, 0)).save(root / "cmyk.jpg")
    Image.fromarray(noise(np.random.default_rng(1), 50, 17)).save(root / "tall.jpg")
    assert Image.open(root / "deep.png").mode.startswith("I")
    manifest = prepare(root, tmp_path / "store", test_count=0)
    names = manifest["files"]
    top = level(tmp_path / "store", TOP)
    assert top.shape == (6, 3, TOP, TOP) and top.dtype == np.uint8
    row = {name: top[i] for i, name in enumerate(names)}
    assert (row["grey.png"] == 100).all() and (row["clear.png"] == 255).all() and (row["deep.png"] == 200).all()
    assert (row["palette.png"].reshape(3, -1).T == [10, 20, 30]).all() and (row["cmyk.jpg"] == 255).all()
    for name in names:
        assert np.array_equal(row[name], reference(root / name)), name


def test_levels_are_rounded_2x2_means_of_the_level_above(folder, tmp_path):
    store = tmp_path / "store"
    manifest = prepare(folder, store)
    assert manifest["resolutions"] == [4, 8, 16]
    for r in (8, 4):
        above = level(store, 2 * r).astype(np.int64)
        sums = above[..., 0::2, 0::2] + above[..., 0::2, 1::2] + above[..., 1::2, 0::2] + above[..., 1::2, 1::2]
        assert np.array_equal(level(store, r), np.round(sums / 4))  # numpy rounds half to even
    for i, name in enumerate(manifest["files"]):
        assert np.array_equal(level(store, TOP)[i], reference(folder / name))
    # the numbers: (1+2+3+5)/4 = 2.75 -> 3; 0.5 -> 0 and 1.5 -> 2 (half to even); 255 stays 255
    x = np.array([[1, 2, 0, 1, 1, 2, 255, 255], [3, 5, 0, 1, 1, 2, 255, 255]], dtype=np.uint8)[None, None]
    assert halve(x).flatten().tolist() == [3, 0, 2, 255]


def test_natural_order_and_the_split(tmp_path, folder):
    for name in ("img10.png", "img9.png", "img1.png", "B.png", "a.png"):
        Image.new("RGB", (8, 8)).save(folder / name)
    manifest = prepare(folder, tmp_path / "store", test_count=3, train_count=5)
    every = [f"{i}.{'png' if i % 3 else 'jpg'}" for i in range(12)] + [
        "a.png",
        "B.png",
        "img1.png",
        "img9.png",
        "img10.png",
    ]
    assert manifest["files"] == every[:5] + every[-3:]
    assert manifest["split"] == {"train": {"rows": [0, 5], "count": 5}, "test": {"rows": [5, 8], "count": 3}}
    with pytest.raises(GenzooError, match="has 17 images, fewer than 15 train \\+ 3 test"):
        prepare(folder, tmp_path / "other", test_count=3, train_count=15)
    with pytest.raises(GenzooError, match="has 17 images: a test split of 17 leaves none to train on"):
        prepare(folder, tmp_path / "other", test_count=17)


def test_resume_after_a_kill_decodes_only_the_rest_and_gives_the_same_bytes(folder, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    prepare(folder, whole, chunk=5)
    real = module.decode_images
    calls = []

    def killed_after_one_chunk(items, *args, **kw):
        if calls:
            raise KeyboardInterrupt
        calls.append(len(items))
        return real(items, *args, **kw)

    monkeypatch.setattr(module, "decode_images", killed_after_one_chunk)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        prepare(folder, out, chunk=5)
    assert not out.exists() and (tmp_path / ".resumed.partial" / "progress.json").is_file()

    decoded = []
    monkeypatch.setattr(
        module, "decode_images", lambda items, *a, **kw: decoded.append(len(items)) or real(items, *a, **kw)
    )
    said = []
    result = prepare(folder, out, chunk=5, say=said.append)
    assert decoded == [5, 2] and result["decoded"] == 7 and "5 of 12 images are done" in said[0]
    for r in (4, 8, 16):
        assert (out / f"{r}.npy").read_bytes() == (whole / f"{r}.npy").read_bytes()
    assert not (tmp_path / ".resumed.partial").exists() and not (out / "progress.json").exists()
    again = prepare(folder, out, chunk=5, say=said.append)
    assert again["reused"] and "reusing it" in said[-1]
    with pytest.raises(GenzooError, match="prepared differently \\(max_resolution 16 -> 32\\)"):
        prepare(folder, out, max_resolution=32)


def test_skip_bad_leaves_broken_files_out_and_lists_them(folder, tmp_path):
    (folder / "4.png").write_bytes(b"not an image")
    with pytest.raises(GenzooError, match="image '4.png' .* cannot be decoded.*--skip-bad"):
        prepare(folder, tmp_path / "store", chunk=4)
    manifest = prepare(folder, tmp_path / "store", chunk=4, skip_bad=True)  # resumes the partial run above
    assert manifest["skipped"] == ["4.png"] and manifest["count"] == 11 and "4.png" not in manifest["files"]
    assert manifest["split"]["train"]["count"] == 9 and level(tmp_path / "store", 8).shape == (11, 3, 8, 8)
    assert manifest["levels"]["8"]["sha256"] == module.file_sha256(tmp_path / "store" / "8.npy")
    module.verify_store(tmp_path / "store")


def test_verify_finds_a_flipped_byte(folder, tmp_path):
    store = tmp_path / "store"
    prepare(folder, store)
    module.verify_store(store)
    data = bytearray((store / "8.npy").read_bytes())
    data[-7] ^= 1
    (store / "8.npy").write_bytes(data)
    with pytest.raises(GenzooError, match="'8.npy' does not match the sha256 in manifest.json"):
        module.verify_store(store)


def test_the_prepared_dataset_reads_the_store(folder, tmp_path):
    store = tmp_path / "store"
    prepare(folder, store, test_count=3)
    train = DATASETS.get("prepared")("train", root=str(store))
    test = DATASETS.get("prepared")("test", root=str(store), resolution=8)
    assert (len(train), len(test), train.image_shape, test.image_shape) == (9, 3, (3, 16, 16), (3, 8, 8))
    assert train.labels is None and train.name == "prepared/train" and test.files == ["9.jpg", "10.png", "11.png"]
    batch = train.__getitems__(torch.tensor([4, 0, 4]))
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 16, 16)
    assert np.array_equal(batch.numpy(), level(store, 16)[[4, 0, 4]])
    assert np.array_equal(test.__getitems__([0]).numpy(), level(store, 8)[[9]])
    rows = np.random.default_rng(1).integers(-9, 9, 40)  # unsorted, repeated and negative rows
    assert np.array_equal(train.__getitems__(rows).numpy(), level(store, 16)[:9][rows])
    assert train.__getitems__([]).shape == (0, 3, 16, 16)
    for wrong in ([9], [-10]):
        with pytest.raises(IndexError, match="out of bounds for axis 0 with size 9"):
            train.__getitems__(wrong)
    assert torch.equal(train[2], torch.from_numpy(level(store, 16)[2].copy()))
    low = train.at_resolution(4)
    assert low.image_shape == (3, 4, 4) and np.array_equal(low.__getitems__(range(9)).numpy(), level(store, 4)[:9])
    assert train.at_resolution(16) is train
    assert len(pickle.dumps(train)) < 4096 and torch.equal(pickle.loads(pickle.dumps(train))[1], train[1])
    with pytest.raises(GenzooError, match="has the resolutions \\[4, 8, 16\\], not 32"):
        train.at_resolution(32)
    with pytest.raises(GenzooError, match="prepared with test_count 3, the recipe says 2"):
        DATASETS.get("prepared")("train", root=str(store), test_count=2)
    with pytest.raises(GenzooError, match="no prepared store at .*genzoo prepare <recipe>.yaml.*genzoo prepare imgs "):
        DATASETS.get("prepared")("train", root=str(tmp_path / "missing"), source="imgs")


def resident_file_mb() -> float:
    """This process's resident pages of mapped files (RssFile), in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_a_whole_level_leaves_nothing_of_it_resident(folder, tmp_path):
    """The map's pages are released after each batch: an epoch over a 30 MB level adds none of it to the process's
    resident memory (without the release every touched page stayed resident: +30 MB here)."""
    store = tmp_path / "store"
    prepare(folder, store, max_resolution=1024, min_resolution=1024)
    train = DATASETS.get("prepared")("train", root=str(store))
    before = resident_file_mb()
    for first in range(0, len(train), 3):
        batch = train.__getitems__(range(first, min(first + 3, len(train))))
    after = resident_file_mb()
    assert np.array_equal(batch.numpy(), level(store, 1024)[9:10])
    assert after - before < 3, f"{after - before:.1f} MB of the level stayed resident"


def test_image_dataset_at_resolution_matches_avg_pool(tmp_path):
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    ds = ImageDataset(images, torch.arange(5), name="noise")
    for r in (16, 8, 4):
        expected = images.float()
        for _ in range(int(np.log2(32 // r))):
            expected = torch.nn.functional.avg_pool2d(expected, 2).round()  # each level from the rounded one above
        low = ds.at_resolution(r)
        assert low.image_shape == (3, r, r) and torch.equal(low.images, expected.to(torch.uint8))
        assert torch.equal(low.labels, ds.labels) and ds.at_resolution(r) is low  # computed once
    assert ds.at_resolution(32) is ds
    with pytest.raises(GenzooError, match="cannot be box-averaged to 12x12.*use one of \\[16, 8, 4, 2, 1\\]"):
        ds.at_resolution(12)


def test_cli_prepares_verifies_and_names_a_broken_file(folder, tmp_path):
    out = tmp_path / "store"
    proc = run_cli("prepare", folder, out, "--max-resolution", 8, "--test-count", 2, "--verify")
    assert (
        "prepared" in proc.stdout and "10 train + 2 test images at 4, 8" in proc.stdout and "verified" in proc.stdout
    )
    assert level(out, 8).shape == (12, 3, 8, 8)
    (folder / "7.png").write_bytes(b"\x89PNG broken")
    bad = run_cli("prepare", folder, tmp_path / "other", "--max-resolution", 8, "--test-count", 2, check=False)
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 1 and len(lines) == 1 and "'7.png'" in lines[0] and "--skip-bad" in lines[0], bad.stderr
    assert not (tmp_path / "other").exists()


def test_cli_prepares_from_a_recipe(folder, tmp_path):
    from typer.testing import CliRunner

    from genzoo.cli import app

    store = tmp_path / "store"
    recipe = write_recipe(
        tmp_path,
        data={"name": "prepared", "root": str(store), "source": str(folder), "resolution": 8, "test_count": 4},
    )
    result = CliRunner().invoke(app, ["prepare", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "8 train + 4 test images at 4, 8" in result.output
    assert len(DATASETS.get("prepared")("test", root=str(store), test_count=4)) == 4
    result = CliRunner().invoke(app, ["prepare", str(recipe), "--test-count", "3"])
    assert result.exit_code == 1 and "the recipe's data block sets these" in result.output
