"""`genzoo compare` says so when the compared runs were trained with different budgets."""

from __future__ import annotations

from genzoo.analysis.compare import budget_warning, training_budget
from genzoo.analysis.report_tables import Entry
from genzoo.core.recipe import load_recipe, save_recipe
from tests.helpers.recipes import write_recipe


def test_different_budgets_are_named(tmp_path):
    runs = []
    for name, steps in (("short", 20), ("long", 40), ("long2", 40)):
        recipe = load_recipe(write_recipe(tmp_path, name, train={"steps": steps}))
        (tmp_path / "runs" / name).mkdir(parents=True)
        save_recipe(recipe, tmp_path / "runs" / name / "recipe.yaml")
        runs.append(tmp_path / "runs" / name)
    (runs[0] / "model").mkdir()
    assert training_budget(runs[0] / "model") == {"steps": 20, "epochs": None, "batch_size": 50}  # a model folder

    def entries(sources, labels):
        return [Entry(label=label, results={}, source=source) for source, label in zip(sources, labels)]

    assert budget_warning(entries(runs[1:], ["long", "long2"])) is None
    warning = budget_warning(entries(runs, ["short", "long", "long2"]))
    assert warning.startswith("Warning: these runs were trained with different budgets")
    assert "short: 20 steps of batch 50; long: 40 steps of batch 50" in warning
    assert budget_warning(entries([tmp_path / "nowhere", runs[0]], ["a", "short"])) is None  # unknown: no claim
    # two sources, each under two samplers (compare --samplers prior,gmm): each label keeps its own source's budget
    # (the labels were once paired with the sources by position, giving short+gmm the long run's 40 steps)
    both = budget_warning(entries([runs[0], runs[0], runs[1], runs[1]], ["short", "short+gmm", "long", "long+gmm"]))
    assert "short: 20 steps of batch 50; short+gmm: 20 steps of batch 50; long: 40 steps" in both
