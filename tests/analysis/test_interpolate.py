"""`genzoo interpolate`: line and four-corner grid in code space, from image files, dataset indices or the prior."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import genzoo
from genzoo.analysis.interpolate import corner_grid, line_codes, load_images
from genzoo.core.grids import save_image, to_uint8
from tests.helpers.cli import ONE_THREAD, run_cli


@pytest.fixture
def trained(tiny_run):
    """The shared tiny MLP ALAE (TINY_ALAE, 20 steps; tests/helpers/runs.py)."""
    return tiny_run("alae")


def tile(png, row, col, size=8, padding=2):
    """Cell (row, col) of a genzoo grid PNG, undoing save_grid's nearest-neighbour upscale: (H, W) uint8."""
    image = torch.from_numpy(np.asarray(Image.open(png).convert("L")).copy())
    up = max(1, 64 // size)
    top, left = (padding + row * (size + padding)) * up, (padding + col * (size + padding)) * up
    return image[top : top + size * up : up, left : left + size * up : up]


def grid_size(rows, cols, size=8, padding=2):
    up = max(1, 64 // size)
    return ((cols * (size + padding) + padding) * up, (rows * (size + padding) + padding) * up)


def assert_tile_is(png, row, col, image):
    expected = to_uint8(image.unsqueeze(0))[0, ..., 0]
    assert (tile(png, row, col).int() - expected.int()).abs().max() <= 1


def test_grid_and_line_math():
    a, b, c, d = torch.randn(4, 5, dtype=torch.float64)
    grid = corner_grid(a, b, c, d, 5)
    assert grid.shape == (25, 5)
    assert (
        torch.equal(grid[0], a) and torch.equal(grid[4], b) and torch.equal(grid[20], c) and torch.equal(grid[24], d)
    )
    assert torch.allclose(grid[12], (a + b + c + d) / 4)  # the centre is the mean of the corners
    assert torch.allclose(grid[2], (a + b) / 2) and torch.allclose(grid[10], (a + c) / 2)  # edges interpolate pairs
    line = line_codes(a, b, 4)
    assert torch.equal(line[0], a) and torch.allclose(line[-1], b) and torch.allclose(line[1], a + (b - a) / 3)


def test_load_images_converts_crops_and_resizes(tmp_path):
    wide = torch.zeros(3, 16, 32)
    wide[:, :, 8:24] = 1.0  # a white square in the middle of a wide RGB image: the centre crop keeps only it
    save_image(wide, tmp_path / "wide.png")
    x = load_images([tmp_path / "wide.png"], (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and x.min() > 0.99


def test_line_from_image_files(trained, tmp_path):
    from genzoo.core.registry import DATASETS

    digits = DATASETS.get("digits")("test")
    x = digits.__getitems__([0, 1]).float() / 255
    save_image(x[0], tmp_path / "a.png")
    save_image(x[1], tmp_path / "b.png", upscale=4)  # 32x32: resized back to the model's 8x8
    out = tmp_path / "line.png"
    proc = run_cli(
        "interpolate", trained, tmp_path / "a.png", tmp_path / "b.png", "--steps", "6", "--out", out, env=ONE_THREAD
    )
    assert "6 images" in proc.stdout
    assert Image.open(out).size == grid_size(1, 6)
    model = genzoo.load(trained)
    ends = model.decode(model.encode(load_images([tmp_path / "a.png", tmp_path / "b.png"], (1, 8, 8))))
    assert_tile_is(out, 0, 0, ends[0])
    assert_tile_is(out, 0, 5, ends[1])


def test_corners_from_dataset_indices(trained, tmp_path):
    from genzoo.core.registry import DATASETS
    from genzoo.datasets.base import to_unit_float

    trained = shutil.copytree(trained, tmp_path / "alae")  # the grid is written into the run: a copy of the shared one
    run_cli("interpolate", trained, "3", "1", "4", "1", "--split", "test", "--corners", "--steps", "5", env=ONE_THREAD)
    out = trained / "interpolation.png"  # next to the source, like `sample`
    assert Image.open(out).size == grid_size(5, 5)
    model = genzoo.load(trained)
    x = to_unit_float(DATASETS.get("digits")("test").__getitems__([3, 1, 4, 1]))
    with torch.no_grad():
        corners = model.decode(model.encode(x))
    for image, (row, col) in zip(corners, [(0, 0), (0, 4), (4, 0), (4, 4)]):
        assert_tile_is(out, row, col, image)
    assert not torch.equal(tile(out, 0, 0), tile(out, 0, 4))


def test_random_codes_from_the_prior_go_through_the_mapping(trained, tmp_path):
    out = tmp_path / "prior.png"
    run_cli("interpolate", trained / "model", "--seed", "3", "--steps", "4", "--out", out, env=ONE_THREAD)
    model = genzoo.load(trained)
    with torch.no_grad():
        w = model.code_from_prior(model.prior.sample(2, generator=torch.Generator().manual_seed(3)))
        ends = model.decode(w)
    assert_tile_is(out, 0, 0, ends[0])
    assert_tile_is(out, 0, 3, ends[1])


def test_bad_inputs_are_one_line(trained, tmp_path):
    from typer.testing import CliRunner

    from genzoo.cli import app

    proc = run_cli("interpolate", trained, "1", "2", "3", "--split", "test", check=False, env=ONE_THREAD)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and lines == [lines[0]] and "a line needs 2 inputs, got 3" in lines[0], proc.stderr
    for args, words in [
        (("1", "2", "--split", "test", "--corners"), "--corners needs 4 inputs"),
        (("1", "9999", "--split", "test"), "indices from 0 to 296"),
        ((str(tmp_path / "nope.png"), str(tmp_path / "nope.png")), "does not exist"),
        (("--steps", "1"), "--steps must be at least 2"),
    ]:
        result = CliRunner().invoke(app, ["interpolate", str(trained), *args])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and words in lines[0], result.stderr
