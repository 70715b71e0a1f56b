"""The example plugin package plugins/genzoo-student-t, pip-installed for real.

pip installs it into a temporary folder (--target, put on PYTHONPATH), so the shared environment is never changed.
Installed, its prior is listed with its package name, is named in a recipe, trains with the MLP AAE (the
discriminator path, as for every plain sampling prior), and runs with every architecture the built-in Gaussian
prior runs with. A plugin that raises on import only warns: tests/core/test_registry.py covers that.
"""

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.helpers.recipes import ROOT, write_recipe

PLUGIN = ROOT / "plugins" / "genzoo-student-t"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "src"
    shutil.copytree(PLUGIN, source)  # pip builds in the source tree: keep the checkout clean
    target = tmp / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "genzoo_student_t" / "__init__.py").is_file()
    assert list(target.glob("genzoo_student_t-*.dist-info/entry_points.txt"))
    return target


@pytest.fixture(scope="module")
def plugin_module():
    """The plugin's module loaded from its source file, for its maths (registering nothing in this process)."""
    spec = importlib.util.spec_from_file_location("_student_t_under_test", PLUGIN / "genzoo_student_t" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_student_t_prior_maths(plugin_module):
    from scipy import stats

    from genzoo.core.errors import GenzooError

    prior = plugin_module.StudentTPrior(3, df=4.0, scale=1.5, loc=0.5)
    z = torch.randn(20, 3) * 3
    expected = stats.multivariate_t(loc=[0.5] * 3, shape=1.5**2 * torch.eye(3).numpy(), df=4.0).logpdf(z.numpy())
    assert torch.allclose(prior.log_prob(z), torch.as_tensor(expected, dtype=torch.float32), atol=1e-4)
    assert torch.equal(
        prior.sample(8, generator=torch.Generator().manual_seed(2)),
        prior.sample(8, generator=torch.Generator().manual_seed(2)),
    )
    light = plugin_module.StudentTPrior(3, df=8.0, scale=1.5, loc=0.5)  # df=8: a finite kurtosis, a stable variance
    a = light.sample(20_000, generator=torch.Generator().manual_seed(1))
    assert abs(a.mean().item() - 0.5) < 0.05
    assert abs(a.var().item() / (1.5**2 * 8 / (8 - 2)) - 1) < 0.1  # variance scale^2 df / (df - 2)
    assert math.isclose(
        plugin_module._standard_gamma(torch.full((20_000,), 0.3), torch.Generator().manual_seed(0)).mean().item(),
        0.3,
        rel_tol=0.05,
    )  # the alpha < 1 branch
    from genzoo.core.options import bind_options

    # the bound is declared in the annotation (PositiveFloat): checked like a built-in's, with one line
    with pytest.raises(GenzooError, match="recipe key 'prior.df' must be > 0, got 0.0"):
        bind_options(plugin_module.StudentTPrior, {"df": 0.0}, "prior", {"dim": None})


# Run with the plugin on PYTHONPATH, in one process (one torch import): `genzoo list priors`, `genzoo train` on a
# recipe naming the plugin's prior, then one optimisation step of every architecture that builds with the built-in
# Gaussian prior.
CHECK = textwrap.dedent("""
    import json, math, sys, torch
    import genzoo
    from genzoo.cli import app
    from genzoo.core.registry import MODELS, PRIORS

    for command in (["list", "priors"], ["train", sys.argv[1]]):
        try:
            app(command, standalone_mode=False)
        except SystemExit as exc:
            assert not exc.code, exc.code

    assert PRIORS.entry("student_t").source == "genzoo-student-t"
    student_t = PRIORS.get("student_t")

    def one_step(model_name, prior, shape):
        torch.manual_seed(0)
        model = genzoo.create_model({"name": model_name}, prior, image_shape=shape)
        model.train()
        x = torch.rand(4, *shape)
        losses = {}
        for phase in model.phases():
            loss, _ = phase.loss(x)
            loss.backward()
            losses[phase.name] = loss.item()
        model.eval()
        images = model.sample(3, generator=torch.Generator().manual_seed(0))
        assert images.shape == (3, *shape) and torch.isfinite(images).all()
        return losses

    report = {}
    for name in MODELS.names():
        needs = getattr(MODELS.get(name), "prior_needs", ())
        for shape in [(1, 28, 28), (1, 32, 32), (3, 32, 32)]:
            try:  # the architectures the built-in Gaussian prior builds with (and the shape they take)...
                genzoo.create_model({"name": name}, {"name": "gaussian"}, image_shape=shape)
            except Exception:
                continue
            # ...must work with the plugin's prior too
            assert all(getattr(student_t, need) for need in needs), (name, needs)
            try:
                losses = one_step(name, {"name": "student_t", "df": 3.0}, shape)
            except Exception:
                one_step(name, {"name": "gaussian"}, shape)  # fails too? then the architecture is at fault here
                raise
            assert all(math.isfinite(v) for v in losses.values()), (name, losses)
            report[name] = sorted(losses)
            break
    print(json.dumps(report))
""")


@pytest.mark.slow  # pip installs the plugin, then trains it with every architecture: 16 s on a busy machine
def test_installed_plugin_is_listed_and_trains_with_every_architecture(site, tmp_path):
    recipe = write_recipe(
        tmp_path,
        prior={"name": "student_t", "df": 3.0, "scale": 2.0},
        train={"steps": 10, "checkpoint_every": 10, "log_every": 5, "sample_every": 10},
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(recipe)],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr
    # `genzoo list` shows the prior with the package it came from
    row = next(line for line in proc.stdout.splitlines() if "student_t" in line)
    assert "genzoo-student-t" in row
    # the recipe trained with the MLP AAE, through its adversarial (discriminator) matching path
    run = tmp_path / "runs" / "tiny"
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["prior"] == {"name": "student_t", "df": 3.0, "scale": 2.0, "loc": 0.0}
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for phase in ("reconstruction", "discriminator", "generator"):
        values = [entry[f"loss/{phase}"] for entry in logged]
        assert values and all(math.isfinite(v) for v in values), phase
    # and every architecture the Gaussian prior works with ran a step with the plugin's prior
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["mlp_aae"] == ["discriminator", "generator", "reconstruction"]
