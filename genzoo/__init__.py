"""genzoo: generative autoencoders in one zoo.

Light at import: submodules (and torch) load on first use, so `genzoo --help` stays instant. The package is built
in layers, each importing only from those below (docs/architecture.md): core <- priors, models, datasets,
metrics <- modelfile <- train <- analysis <- cli.
"""

from genzoo.core.errors import GenzooError
from genzoo.core.version import __version__


def load(path, device="cpu", *, local_files_only=False):
    """Rebuild a trained model from a run folder, a model folder (config.json + model.safetensors), or the Hugging
    Face Hub: "hf://org/name[@revision]", or "org/name" when no such local folder exists (cached by huggingface_hub;
    HF_HUB_OFFLINE=1 or local_files_only=True use the cache only)."""
    from genzoo.modelfile.hub import load as _load

    return _load(path, device=device, local_files_only=local_files_only)


def create_model(model: dict, prior: dict | None = None, image_shape=(1, 28, 28)):
    """Build an untrained architecture from recipe sections, e.g.
    create_model({"name": "mlp_aae"}, {"name": "gaussian"})."""
    from genzoo.modelfile.folder import create_model as _create

    return _create(model, prior, image_shape)


def __getattr__(name):
    """The registries (genzoo.PRIORS, MODELS, DATASETS, METRICS), imported on first use."""
    if name in ("PRIORS", "MODELS", "DATASETS", "METRICS", "REGISTRIES"):
        from genzoo.core import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'genzoo' has no attribute {name!r}")


__all__ = ["__version__", "GenzooError", "load", "create_model", "PRIORS", "MODELS", "DATASETS", "METRICS"]
