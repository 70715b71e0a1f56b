"""The README's "Write your own model" section, run as written: a model genzoo does not ship (WAE-MMD) defined,
registered, trained, saved, loaded, evaluated and reported beside a built-in, with no edit to genzoo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import genzoo
from tests.helpers.recipes import ROOT

README = ROOT / "README.md"


def section_code(title: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The section's two code blocks, executed in a working folder of their own: (namespace, run folder)."""
    definition, usage = section_code("Write your own model")
    namespace: dict = {}
    exec(compile(definition, "README: the model", "exec"), namespace)
    folder = tmp_path_factory.mktemp("write_a_model")
    cwd = Path.cwd()
    try:
        import os

        os.chdir(folder)
        exec(compile(usage, "README: train and evaluate", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace, folder / namespace["run"]


def test_the_readme_model_trains_saves_loads_and_evaluates(written):
    namespace, run = written
    assert genzoo.MODELS.get("wae_mmd") is namespace["WAEMMD"]
    model = genzoo.load(run)
    assert type(model).__name__ == "WAEMMD" and model.config["model"]["penalty"] == 10.0
    from genzoo.core.registry import DATASETS

    test = {"test": DATASETS.get("digits")("test")}
    untrained = genzoo.create_model(dict(model.config["model"]), model.config["prior"], model.image_shape)
    trained_mse = genzoo.evaluate(model, "reconstruction")["reconstruction"]["mse"]
    untrained_mse = genzoo.evaluate(untrained, "reconstruction", datasets=test)["reconstruction"]["mse"]
    assert trained_mse < 0.5 * untrained_mse, (trained_mse, untrained_mse)  # it learned to reconstruct
    # the prior pulls the codes: their mean and spread near N(0, I)'s (untrained codes are far narrower)
    x = test["test"].images[:300].float() / 255
    with torch.no_grad():
        z = model.eval().encode(x)
    assert z.mean(0).abs().max() < 0.5 and 0.5 < z.std(0).mean() < 1.5, (z.mean(0), z.std(0))


def test_the_readme_model_is_reported_beside_a_built_in(written, tmp_path):
    from genzoo.analysis.compare import compare

    _, run = written
    aae = genzoo.fit(
        {
            "data": {"name": "digits"},
            "model": {"name": "mlp_aae", "latent_dim": 8, "hidden": 64},
            "prior": {"name": "gaussian"},
            "train": {"steps": 20, "batch_size": 50},
            "output_dir": str(tmp_path / "runs"),
        }
    )
    compare([run, aae], ["reconstruction"], None, tmp_path / "report", samples=16, labels=["wae", "aae"])
    text = (tmp_path / "report" / "report.md").read_text()
    mse = genzoo.evaluate(run, "reconstruction")["reconstruction"]["mse"]
    assert re.search(rf"\| wae \| {mse:.6g} \|", text) and re.search(r"\| aae \| [0-9.]+ \|", text), text[:800]
    assert (tmp_path / "report" / "grids" / "wae-samples.png").is_file()
