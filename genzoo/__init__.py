"""genzoo: generative autoencoders in one zoo.

Light at import: submodules (and torch) load on first use, so `genzoo --help` stays instant.
"""

__version__ = "0.1.0"


def load(path, device="cpu", *, local_files_only=False):
    """Rebuild a trained model from a run folder, a model folder (config.json + model.safetensors), or the Hugging
    Face Hub: "hf://org/name[@revision]", or "org/name" when no such local folder exists (cached by huggingface_hub;
    HF_HUB_OFFLINE=1 or local_files_only=True use the cache only)."""
    from genzoo.hub import load as _load

    return _load(path, device=device, local_files_only=local_files_only)


def create_model(model: dict, prior: dict | None = None, image_shape=(1, 28, 28)):
    """Build an untrained architecture from recipe sections, e.g. create_model({"name": "mlp_aae"}, {"name": "gaussian"})."""
    from genzoo.hub import create_model as _create
    from genzoo.recipe import _resolve_section
    from genzoo.registry import MODELS, PRIORS

    model = _resolve_section(MODELS, model, "model", injected=("prior", "image_shape"))
    prior = _resolve_section(PRIORS, prior, "prior", injected=("dim",)) if prior is not None else None
    return _create(model, prior, image_shape)


__all__ = ["__version__", "load", "create_model"]
