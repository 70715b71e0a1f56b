import copy
import warnings

import pytest
import yaml

from genzoo.core.errors import GenzooError
from genzoo.core.recipe import TranslatedRecipe, apply_overrides, differences, load_recipe, resolve
from tests.helpers.recipes import ROOT, TINY


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
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranslatedRecipe)  # written the new way: nothing to translate
        for path in sorted((ROOT / "recipes").glob("*.yaml")):
            load_recipe(path)


def test_shipped_studies_compare_models_on_the_same_data_and_budget():
    """Every model of a shipped study resolves, and all see the same data section and epochs (a matched study)."""
    from genzoo.analysis.study import load_study

    studies = sorted((ROOT / "recipes" / "studies").glob("*.yaml"))
    assert len(studies) >= 3
    for path in studies:
        study = load_study(path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", TranslatedRecipe)
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


@pytest.mark.parametrize(
    "model, prior, phases",
    [
        (
            {"name": "mlp_aae", "lr": 1e-3, "regularization_lr": 5e-4},
            {"name": "gaussian"},
            {"reconstruction": {"lr": 1e-3}, "discriminator": {"lr": 5e-4}, "generator": {"lr": 5e-4}},
        ),
        ({"name": "mlp_aae", "regularization_lr": 5e-4}, {"name": "mbrce"}, {"prior": {"lr": 5e-4}}),
        ({"name": "ae", "lr": 1e-3}, {"name": "gaussian"}, {"reconstruction": {"lr": 1e-3}}),
        (
            {"name": "vae", "lr": 3e-3, "weight_decay": 0.01, "adamw": True},
            {"name": "gaussian"},
            {"vae": {"lr": 3e-3, "weight_decay": 0.01, "decoupled_weight_decay": True}},
        ),
        ({"name": "lbae", "lr": 1e-4, "weight_decay": 0.1}, None, {"autoencoder": {"lr": 1e-4, "weight_decay": 0.1}}),
        (
            {"name": "mlp_alae", "lr": 1e-3, "reciprocity_step": "folded"},
            {"name": "gaussian"},
            {"discriminator": {"lr": 1e-3}, "generator": {"lr": 1e-3}},
        ),
        (
            {"name": "style_alae", "lr": 1e-3, "betas": [0.0, 0.9]},
            {"name": "mbrce"},
            {phase: {"lr": 1e-3, "betas": (0.0, 0.9)} for phase in ("push", "pull", "reciprocity")},
        ),
    ],
)
def test_model_section_optimiser_settings_move_to_train_phases(model, prior, phases):
    """Recipes written before train.phases held every optimiser setting still load: each model-section setting
    lands on the phases it set (which depend on the prior and the schedule), with one notice line."""
    raw = {"data": {"name": "digits"}, "model": model, "train": {"steps": 1}, **({"prior": prior} if prior else {})}
    with pytest.warns(TranslatedRecipe) as notices:
        recipe = resolve(raw)
    assert len(notices) == 1 and str(notices[0].message).startswith(f"recipe: {model['name']}.")
    assert {name: {k: v for k, v in vars(o).items() if v is not None} for name, o in recipe.train.phases.items()} == (
        phases
    )
    moved = set(model) - {"name", "reciprocity_step"}
    assert not moved & set(recipe.model), recipe.model  # the model section keeps the architecture only


def test_the_notice_names_every_move_and_train_phases_wins():
    raw = apply_overrides(
        TINY, ["train.phases={generator: {lr: 0.002}}", "model.lr=0.001", "model.regularization_lr=5e-4"]
    )
    with pytest.warns(TranslatedRecipe) as notices:
        recipe = resolve(raw)
    assert [str(n.message) for n in notices] == [
        "recipe: mlp_aae.lr moved to train.phases.reconstruction.lr; "
        "mlp_aae.regularization_lr moved to train.phases.{discriminator,generator}.lr (translated)"
    ]
    lrs = {name: options.lr for name, options in recipe.train.phases.items()}
    assert lrs == {"generator": 0.002, "reconstruction": 0.001, "discriminator": 5e-4}  # the recipe's own value kept


def test_a_run_saved_before_the_move_compares_equal_to_its_new_form():
    """A run folder's recipe.yaml from before the move (every model default filled, lr included) resumes under the
    same recipe written the new way, quietly; an architecture change is still refused."""
    new = resolve(apply_overrides(TINY, [])).to_dict()
    old = copy.deepcopy(new)
    old["model"].update(lr=0.001, regularization_lr=0.0005)
    old["train"]["phases"] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert differences(old, new) == []
        old["model"]["hidden"] = 32
        assert differences(old, new) == ["model.hidden"]
