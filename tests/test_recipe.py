import pytest
import yaml
from conftest import ROOT, TINY

from genzoo.core.errors import GenzooError
from genzoo.core.recipe import apply_overrides, differences, load_recipe, resolve


def test_defaults_filled_for_train_and_components(tiny_recipe):
    r = load_recipe(tiny_recipe)
    assert r.name == "tiny"
    assert r.model["layers"] == 2 and r.model["posterior"] == "gaussian"  # constructor defaults
    assert r.prior == {"name": "gaussian", "std": 2.0, "mean": 0.0}
    assert r.data == {"name": "digits", "test_size": 297, "size": None}
    assert r.train.keep_checkpoints == 2 and r.train.mixed_precision is None  # None: Accelerate decides


def test_overrides_are_typed_and_nested(tiny_recipe):
    r = load_recipe(
        tiny_recipe, ["train.batch_size=64", "prior.std=5", "train.phases.discriminator.lr=1e-5", "name=other"]
    )
    assert r.train.batch_size == 64 and r.prior["std"] == 5.0 and r.name == "other"
    assert r.train.phases["discriminator"].lr == 1e-5


@pytest.mark.parametrize(
    "override, words",
    [
        (["train.batchsize=3"], ["train.batchsize", "did you mean 'batch_size'"]),
        (["model.hiden=3"], ["model.hiden", "did you mean 'hidden'"]),
        (["prior.sdt=3"], ["prior.sdt", "did you mean 'std'"]),
        (["train.batch_size=big"], ["train.batch_size", "must be an integer", "'big'"]),
        (["prior.std=[1]"], ["prior.std", "must be a number"]),
        (["train.mixed_precision=fp8"], ["train.mixed_precision", "one of"]),
        (["model.name=mlp_aea"], ["unknown model 'mlp_aea'", "did you mean 'mlp_aae'"]),
        (["prior.name=gausian"], ["unknown prior 'gausian'", "did you mean 'gaussian'"]),
        (["data.name=minst"], ["unknown dataset 'minst'", "did you mean 'mnist'"]),
        (["model.image_shape=[1,2,3]"], ["model.image_shape"]),  # injected by genzoo, not settable
        (["train.steps=null"], ["neither 'train.steps' nor 'train.epochs'"]),
        (["nonsense"], ["not of the form key.path=value"]),
    ],
)
def test_bad_recipes_name_the_key(tiny_recipe, override, words):
    with pytest.raises(GenzooError) as info:
        load_recipe(tiny_recipe, override)
    for w in words:
        assert w in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(GenzooError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  name: digits\n model: [\n")
    with pytest.raises(GenzooError, match=r"not valid YAML at line \d+, column \d+"):
        load_recipe(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(GenzooError, match="must be a mapping"):
        load_recipe(listy)


def test_shipped_recipes_validate():
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        load_recipe(path)


def test_shipped_studies_compare_models_on_the_same_data_and_budget():
    """Every model of a shipped study resolves, and all see the same data section and epochs (a matched study)."""
    from genzoo.analysis.study import load_study

    studies = sorted((ROOT / "recipes" / "studies").glob("*.yaml"))
    assert len(studies) >= 3
    for path in studies:
        study = load_study(path)
        resolved = [
            load_recipe(entry["recipe"], [*study.overrides, *entry["overrides"], "data.root=/data"])
            for entry in study.models.values()
        ]
        assert len(resolved) >= 3, path
        for recipe in resolved[1:]:
            assert recipe.data == resolved[0].data, (path, recipe.data, resolved[0].data)
            assert (recipe.train.epochs, recipe.train.steps) == (resolved[0].train.epochs, resolved[0].train.steps), (
                path
            )
        assert all(recipe.train.eval is None for recipe in resolved), path  # no model selection on the test split


def test_differences_ignore_resumable_keys():
    a = resolve(apply_overrides(TINY, [])).to_dict()
    b = resolve(apply_overrides(TINY, ["train.steps=400", "train.log_every=7"])).to_dict()
    c = resolve(apply_overrides(TINY, ["model.hidden=32"])).to_dict()
    assert differences(a, b) == []
    assert differences(a, c) == ["model.hidden"]


def test_saved_recipe_roundtrips(tmp_path, tiny_recipe):
    from genzoo.core.recipe import save_recipe

    r = load_recipe(tiny_recipe, ["train.phases.generator.betas=[0.0, 0.99]"])
    save_recipe(r, tmp_path / "saved.yaml")
    again = resolve(yaml.safe_load((tmp_path / "saved.yaml").read_text()))
    assert again == r
