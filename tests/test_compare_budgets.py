"""`genzoo compare` says so when the compared runs were trained with different budgets."""

from __future__ import annotations

from conftest import write_recipe

from genzoo.analysis.compare import budget_warning, training_budget
from genzoo.core.recipe import load_recipe, save_recipe


def test_different_budgets_are_named(tmp_path):
    runs = []
    for name, steps in (("short", 20), ("long", 40), ("long2", 40)):
        recipe = load_recipe(write_recipe(tmp_path, name, train={"steps": steps}))
        (tmp_path / "runs" / name).mkdir(parents=True)
        save_recipe(recipe, tmp_path / "runs" / name / "recipe.yaml")
        runs.append(tmp_path / "runs" / name)
    (runs[0] / "model").mkdir()
    assert training_budget(runs[0] / "model") == {"steps": 20, "epochs": None, "batch_size": 50}  # a model folder
    assert budget_warning(runs[1:], ["long", "long2"]) is None
    warning = budget_warning(runs, ["short", "long", "long2"])
    assert warning.startswith("Warning: these runs were trained with different budgets")
    assert "short: 20 steps of batch 50; long: 40 steps of batch 50" in warning
    assert budget_warning([tmp_path / "nowhere", runs[0]], ["a", "short"]) is None  # unknown budgets: no claim
