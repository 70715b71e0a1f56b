"""`genzoo study STUDY.yaml`: train several recipes over several seeds with one budget, evaluate, report.

A study file:

    name: mbrce_vs_baselines_mnist
    output_dir: runs/studies            # runs go to <output_dir>/<name>/<model>-s<seed>, the report to .../report
    seeds: [0, 1, 2]
    overrides: [train.epochs=50]        # applied to every recipe (the matched budget), before the command line's
    models:                             # label: recipe, or {recipe: ..., overrides: [...]} for one model only
      mbrce_aae: recipes/mbrce_mnist.yaml
      aae: recipes/aae_mnist.yaml
    metrics: [reconstruction, prior_match, fid, parzen]
    metric_options: {fid: {count: 10000}}
    split: test

Runs that exist resume (or are already finished: the trainer returns at once); the report table gives mean ±
standard deviation over the seeds of each model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from genzoo.core.errors import GenzooError


@dataclass
class StudySpec:
    name: str
    models: dict
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=lambda: ["reconstruction"])
    metric_options: dict = field(default_factory=dict)
    split: str = "test"
    limit: int | None = None
    output_dir: str = "runs/studies"
    samples: int = 64


def load_study(path) -> StudySpec:
    from genzoo.core.options import build_dataclass
    from genzoo.core.recipe import read_yaml

    raw = read_yaml(path)
    spec = build_dataclass(StudySpec, raw, "study") if not isinstance(raw, StudySpec) else raw
    if not spec.models:
        raise GenzooError(f"study '{path}' names no models", "add models: {label: recipes/x.yaml}")
    base = Path(path).resolve().parent
    for label, entry in list(spec.models.items()):
        entry = {"recipe": entry} if isinstance(entry, str) else dict(entry)
        if "recipe" not in entry:
            raise GenzooError(f"study key 'models.{label}' names no recipe", f"write models.{label}: recipes/x.yaml")
        recipe = Path(entry["recipe"])
        if not recipe.is_file() and (base / recipe).is_file():
            recipe = base / recipe
        if not recipe.is_file():
            raise GenzooError(f"study key 'models.{label}': recipe '{entry['recipe']}' does not exist", "fix the path")
        spec.models[label] = {"recipe": recipe, "overrides": list(entry.get("overrides") or [])}
    return spec


def run_study(path, overrides: list[str] | None = None, device: str = "cpu", console=None, progress=None) -> dict:
    from genzoo.analysis.report import compare
    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    spec = load_study(path)
    root = Path(spec.output_dir) / spec.name
    recipes = {}
    for label, entry in spec.models.items():  # resolve every recipe first: a bad key fails before any training
        for seed in spec.seeds:
            run = f"{label}-s{seed}"
            recipes[run] = (
                label,
                load_recipe(
                    entry["recipe"],
                    [
                        *spec.overrides,
                        *entry["overrides"],
                        *(overrides or []),
                        f"seed={seed}",
                        f"name={run}",
                        f"output_dir={root}",
                    ],
                ),
            )
    runs, groups = [], {}
    for run, (label, recipe) in recipes.items():
        if progress is not None:
            progress(f"training {run}")
        runs.append(Trainer(recipe, console=console).fit())
        groups[run] = label
    return compare(
        runs,
        spec.metrics,
        spec.metric_options,
        root / "report",
        split=spec.split,
        limit=spec.limit,
        device=device,
        samples=spec.samples,
        title=f"study {spec.name}",
        groups=groups,
        labels=list(recipes),
        progress=progress,
    )
