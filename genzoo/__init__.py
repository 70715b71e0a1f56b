"""genzoo: generative autoencoders in one zoo.

Light at import: submodules (and torch) load on first use, so `genzoo --help` stays instant. The package is built
in layers, each importing only from those below (docs/architecture.md): core <- priors, models, datasets,
metrics <- modelfile <- train <- analysis <- cli.
"""

from genzoo.core.errors import GenzooError
from genzoo.core.version import __version__


def load(path, device="cpu", *, local_files_only=False, sampler=None):
    """Rebuild a trained model from a run folder, a model folder (config.json + model.safetensors), or the Hugging
    Face Hub: "hf://org/name[@revision]", or "org/name" when no such local folder exists (cached by huggingface_hub;
    HF_HUB_OFFLINE=1 or local_files_only=True use the cache only). sampler="gmm" (any name fitted with
    `genzoo fit-sampler`): `model.sample` draws its codes from that fitted sampler instead of the prior."""
    from genzoo.modelfile.hub import load as _load

    return _load(path, device=device, local_files_only=local_files_only, sampler=sampler)


def create_model(model: dict, prior: dict | None = None, image_shape=(1, 28, 28)):
    """Build an untrained architecture from recipe sections, e.g.
    create_model({"name": "mlp_aae"}, {"name": "gaussian"})."""
    from genzoo.modelfile.folder import create_model as _create

    return _create(model, prior, image_shape)


def recipe(source, overrides=()):
    """A validated Recipe, every default filled, from a YAML path or a dict of sections (data, model, prior, train),
    with optional dotted overrides: genzoo.recipe({"data": {"name": "digits"}, ...}, ["train.steps=100"])."""
    return _as_recipe(source, overrides)


def _as_recipe(source, overrides=()):
    from pathlib import Path

    from genzoo.core.recipe import Recipe, apply_overrides, load_recipe, resolve

    if isinstance(source, Recipe):
        return resolve(apply_overrides(source.to_dict(), list(overrides)), source.name)
    if isinstance(source, (str, Path)):
        return load_recipe(source, list(overrides))
    return resolve(apply_overrides(dict(source), list(overrides)))


def fit(recipe, dataset=None, *, console=None):
    """Train (or resume) the run a recipe describes; returns its run folder. `recipe` is a Recipe, a dict or a YAML
    path. `dataset`: train on a torch Dataset given here instead of the recipe's data (its items uint8 (C, H, W),
    floats in [0, 1] or PIL images; a dict recipe without `data` then records `data: {name: python}`)."""
    from genzoo.train.trainer import Trainer

    if dataset is not None and isinstance(recipe, dict) and "data" not in recipe:
        recipe = {**recipe, "data": {"name": "python"}}
    if dataset is not None:
        from genzoo.datasets.base import from_torch

        dataset = from_torch(dataset)
    return Trainer(_as_recipe(recipe), console=console, dataset=dataset).fit()


def fit_sampler(source, sampler="gmm", options=None, **kwargs):
    """Fit a sampler ("gmm", "gaussian", "flow", or a plugin's) with `options` on a trained model's training codes
    and save it in its model folder (samplers/<name>); returns (that folder, the fit record). kwargs: name, limit,
    seed, codes ("mean" or "draw"), held_out, overwrite, data_root, device. Then genzoo.load(source, sampler=name)."""
    from genzoo.modelfile.fitted import fit_sampler as _fit

    return _fit(source, {"name": sampler, **(options or {})}, **kwargs)


def evaluate(
    model,
    metrics,
    *,
    split="test",
    options=None,
    limit=None,
    datasets=None,
    data_root=None,
    device="cpu",
    sampler=None,
    progress=None,
    out=None,
):
    """{metric: {values..., protocol}} for a model (loaded or a source genzoo.load takes) on its data's `split`, or on
    `datasets` ({split: torch Dataset}) given here. A source is loaded on `device`, its samples' codes drawn from
    `sampler` (a fitted one's name) if given; `progress(metric)` is called as each metric starts; `out`: a JSON file
    to write the results to as well."""
    import torch

    from genzoo.datasets.base import from_torch
    from genzoo.metrics.evaluate import evaluate as run_metrics
    from genzoo.modelfile.folder import model_revision

    source = None
    if not isinstance(model, torch.nn.Module):
        source, model = model, load(model, device=device, sampler=sampler)
    else:
        from genzoo.modelfile.folder import model_config

        model_config(model)  # a model built in Python: its config from its recorded options
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    given = {k: from_torch(v) for k, v in (datasets or {}).items()}
    revision = model_revision(model, source)
    results = run_metrics(
        model,
        metrics,
        options,
        split=split,
        limit=limit,
        data_root=data_root,
        revision=revision,
        datasets=given,
        progress=progress,
    )
    if out is not None:
        from genzoo.core.io import write_json

        write_json(out, results)
    return results


def __getattr__(name):
    """The registries (genzoo.PRIORS, MODELS, DATASETS, METRICS, SAMPLERS), imported on first use."""
    if name in ("PRIORS", "MODELS", "DATASETS", "METRICS", "SAMPLERS", "REGISTRIES"):
        from genzoo.core import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'genzoo' has no attribute {name!r}")


__all__ = [
    "__version__",
    "GenzooError",
    "recipe",
    "fit",
    "load",
    "evaluate",
    "create_model",
    "PRIORS",
    "MODELS",
    "DATASETS",
    "METRICS",
]
