"""The CLI's argument rules, now functions below it: overrides told from paths by their text, label names before
indices, sampler options, --device, and prepare's two forms. Fast: no model is trained."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from genzoo.cli import app
from genzoo.core.errors import GenzooError


@pytest.mark.parametrize(
    "text,expected",
    [
        ("fid.count=1000", True),
        ("train.batch_size=64", True),
        ("fid=3", True),  # an option, refused later as not metric.option=value
        ("runs/lr=0.1", False),  # a '/' before the '=': a path
        ("./a.b=c", False),
        ("runs/a", False),
        ("hf://org/name@v1", False),
        ("org/name", False),
    ],
)
def test_an_override_is_told_from_a_path_by_its_text_alone(text, expected):
    from genzoo.core.recipe import is_override

    assert is_override(text) is expected


def test_compare_reads_a_path_with_an_equals_sign_as_a_model(tmp_path):
    from genzoo.core.recipe import is_override

    (tmp_path / "x.y=z").mkdir()  # a folder named like an option: still an option unless written as a path
    assert is_override("x.y=z") and not is_override(str(tmp_path / "x.y=z"))
    result = CliRunner().invoke(app, ["compare", "fid.count=3"])
    assert result.exit_code == 1 and "no models to compare" in result.output
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "nothing=here")])
    assert result.exit_code == 1 and "no models to compare" not in result.output


def test_a_label_name_is_looked_up_before_an_index():
    from genzoo.datasets.base import ImageDataset

    data = ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 3), name="faces")
    data.label_names = ["Smiling", "Eyeglasses", "0"]
    assert data.label_index("Eyeglasses") == 1
    assert data.label_index("0") == 2  # the label named '0', not column 0
    assert data.label_index("1") == 1
    with pytest.raises(GenzooError, match="no attribute 'Smilng' in the labels of faces \\(did you mean 'Smiling'"):
        data.label_index("Smilng")


def test_sampler_options_with_or_without_the_sampler_prefix():
    from genzoo.samplers.fit import parse_sampler_options

    assert parse_sampler_options(["gmm.components=20", "reg_covar=0.001"], "gmm") == {
        "components": 20,
        "reg_covar": 0.001,
    }
    with pytest.raises(GenzooError, match="sampler option 'components' is not KEY=VALUE"):
        parse_sampler_options(["components"], "gmm")


def test_device_is_checked_against_the_machine():
    from genzoo.core.devices import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GenzooError, match="--device 'tpu9' is not a device"):
        resolve_device("tpu9")


def test_prepare_takes_images_and_out_or_a_recipe(tmp_path):
    from genzoo.datasets.prepared import store_options

    args = store_options(tmp_path / "images", ["store"], max_resolution=16)
    assert args["out"].name == "store" and (args["min_resolution"], args["test_count"]) == (4, 1000)
    with pytest.raises(GenzooError, match="needs the images, the store folder and --max-resolution"):
        store_options(tmp_path / "images", [], max_resolution=16)
    with pytest.raises(GenzooError, match="--test-count with a recipe"):
        store_options(tmp_path / "r.yaml", [], test_count=5)
