"""Declared capabilities (genzoo.core.capabilities): which built-in components have which optional ability, the
one-line refusal, and a source check that no other module probes a component for a member."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import genzoo
from genzoo.core import capabilities as cap
from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS, PRIORS

PACKAGE = Path(genzoo.__file__).parent

# Probes that look at things other than components: the OS, TorchScript file layouts, exceptions of other
# libraries, annotations, and the recipe's own option objects. (path relative to genzoo/, probed name)
NOT_COMPONENTS = {
    ("core/capabilities.py", "__annotations__"),
    ("core/options.py", "__name__"),
    ("core/recipe.py", "problem_mark"),
    ("core/recipe.py", "problem"),
    ("core/recorded.py", "_records"),
    ("datasets/prepared.py", "posix_fallocate"),
    ("train/environment.py", "sched_getaffinity"),
    ("train/environment.py", "getloadavg"),
    ("metrics/inception.py", "layers"),
    ("metrics/inception.py", "net"),
    ("modelfile/hub.py", "response"),
    ("modelfile/hub.py", "server_message"),
    ("analysis/study.py", "key"),
}


def probes(root: Path = PACKAGE):
    """(path, line, probed name) of every hasattr(x, name) and getattr(x, name, default) in the package."""
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) == 3):
                name = node.args[1]
                yield (
                    path.relative_to(root).as_posix(),
                    node.lineno,
                    name.value if isinstance(name, ast.Constant) else ast.unparse(name),
                )


def test_no_module_probes_a_component_outside_the_capability_check():
    found = [(path, line, name) for path, line, name in probes() if (path, name) not in NOT_COMPONENTS]
    assert not found, (
        "probe a component's optional member through genzoo.core.capabilities (a Protocol and can/require), "
        f"not hasattr/getattr: {found}"
    )


def test_the_source_check_catches_a_new_probe(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "new.py").write_text(
        "def f(model):\n    if hasattr(model, 'style_mix'):\n        return getattr(model, 'prior', None)\n"
    )
    assert list(probes(tmp_path)) == [("models/new.py", 2, "style_mix"), ("models/new.py", 3, "prior")]


TINY_STYLE = {"name": "style_alae", "latent_dim": 8, "start_filters": 8, "max_filters": 8}


@pytest.mark.parametrize(
    "model, prior, shape, abilities",
    [
        ({"name": "mlp_aae", "latent_dim": 4}, {"name": "gaussian"}, (1, 8, 8), set()),
        ({"name": "vae", "latent_dim": 4, "max_filters": 8, "layers": 2}, {"name": "gaussian"}, (1, 8, 8), {"post"}),
        ({"name": "mlp_alae", "latent_dim": 4}, {"name": "gaussian"}, (1, 8, 8), {"maps"}),
        ({"name": "lbae", "latent_dim": 24}, None, (1, 8, 8), {"fits", "paths", "edits"}),
        (TINY_STYLE, {"name": "gaussian"}, (3, 16, 16), {"grows", "maps", "mixes"}),
    ],
)
def test_built_in_models_declare_what_they_can_do(model, prior, shape, abilities):
    names = {
        "grows": cap.Grows,
        "fits": cap.FitsBeforeExport,
        "maps": cap.MapsPriorCodes,
        "post": cap.HasPosterior,
        "paths": cap.DrawsCodePaths,
        "edits": cap.EditsAttributes,
        "mixes": cap.MixesStyles,
    }
    built = genzoo.create_model(model, prior, shape)
    assert {k for k, ability in names.items() if cap.can(built, ability)} == abilities
    # the MLP AAE has an attribute named `posterior` (its posterior type, a string): not the ability
    if model["name"] == "mlp_aae":
        assert isinstance(built.posterior, str) and not cap.can(built, cap.HasPosterior)


def test_priors_and_datasets_declare_theirs():
    assert cap.can(PRIORS.get("mbrce")(4), cap.HasDivergence)
    assert not cap.can(PRIORS.get("gaussian")(4), cap.HasDivergence)
    assert cap.can(DATASETS.get("digits")("test"), cap.ServesResolutions)

    class Plain(torch.utils.data.Dataset):
        name = "plain"

    assert not cap.can(Plain(), cap.ServesResolutions)


def test_require_names_the_component_and_what_it_lacks():
    vae = genzoo.create_model({"name": "vae", "latent_dim": 4, "max_filters": 8, "layers": 2}, {"name": "gaussian"})
    with pytest.raises(GenzooError) as err:
        cap.require(vae, cap.MixesStyles, "model 'vae'", "mix styles", "train a style_alae model")
    assert str(err.value) == "model 'vae' cannot mix styles: it has no style slots (no style_mix). " + (
        "train a style_alae model"
    )


def test_a_plugin_model_gains_an_ability_by_defining_its_members():
    class Mixer(torch.nn.Module):
        def style_mix(self, source_codes, destination_codes, kind):
            return destination_codes

    class NotQuite(torch.nn.Module):
        style_mix = "coarse"  # a member of that name that cannot be called

    assert cap.can(Mixer(), cap.MixesStyles) and not cap.can(NotQuite(), cap.MixesStyles)
    assert cap.members(cap.Grows) == (["set_growth"], ["resolutions"])
