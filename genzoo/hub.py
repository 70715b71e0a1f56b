"""The model folder: config.json + model.safetensors (diffusers' layout), and `load` to rebuild a model from it.

config.json holds everything needed to rebuild the network through the registries: the resolved model and prior
sections of the recipe, the image shape, and the dataset section (so `reconstruct` knows its data).
Loading never runs code from the file: safetensors only, never pickle.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.io import load_tensors, read_json, save_tensors, write_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "genzoo-model/1"


def create_model(model: dict, prior: dict | None, image_shape) -> torch.nn.Module:
    """Build an architecture (and its prior) from resolved recipe sections; the config rides along on `.config`."""
    from genzoo.registry import MODELS, PRIORS, build

    injected = {"image_shape": tuple(image_shape)}
    if prior is not None:
        injected["prior"], prior = build(PRIORS, prior, "prior", dim=model.get("latent_dim"))
    net, model = build(MODELS, model, "model", **injected)
    net.config = {"format": FORMAT, "model": model, "prior": prior, "image_shape": list(image_shape)}
    return net


def save_pretrained(model: torch.nn.Module, folder: Path, extra: dict | None = None) -> Path:
    """Write `folder` = config.json + model.safetensors. Written into a temporary folder, then swapped in."""
    from genzoo import __version__
    from genzoo.io import replace_dir

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_tensors(tmp / WEIGHTS_NAME, model.state_dict(), metadata={"format": "pt"})
    write_json(tmp / CONFIG_NAME, {**model.config, "genzoo_version": __version__, **(extra or {})})
    replace_dir(tmp, folder)
    return folder


def resolve_model_folder(path: str | Path) -> Path:
    """A model folder, or a run folder (its model/ export)."""
    path = Path(path)
    if (path / CONFIG_NAME).is_file():
        return path
    if (path / "model" / CONFIG_NAME).is_file():
        return path / "model"
    if not path.exists():
        raise GenzooError(f"'{path}' does not exist", "give a run folder (runs/<name>) or a model folder")
    if (path / "checkpoints").is_dir():
        raise GenzooError(f"run '{path}' has checkpoints but no exported model/ yet",
                          "let training reach its first checkpoint (train.checkpoint_every), or finish it")
    raise GenzooError(f"'{path}' is neither a model folder (config.json + model.safetensors) nor a run folder",
                      "give runs/<name> or its model/ folder")


def load(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model from a model folder or run folder, weights loaded, in eval mode."""
    folder = resolve_model_folder(path)
    config = read_json(folder / CONFIG_NAME, "model config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GenzooError(f"'{folder / CONFIG_NAME}' is not a genzoo model config (format {FORMAT} expected)",
                          "point at a folder written by genzoo (runs/<name>/model)")
    model = create_model(config["model"], config.get("prior"), config["image_shape"])
    state = load_tensors(folder / WEIGHTS_NAME, "model weights")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise GenzooError(f"'{folder / WEIGHTS_NAME}' does not fit {config['model']['name']} ({str(exc).splitlines()[1:2]})",
                          "the weights and config.json come from different models: re-export the run") from None
    if missing or unexpected:
        raise GenzooError(f"'{folder / WEIGHTS_NAME}' does not fit {config['model']['name']} "
                          f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})",
                          "the weights and config.json come from different models: re-export the run")
    model.config = {k: config[k] for k in ("format", "model", "prior", "image_shape", "data") if k in config}
    model.extra_config = {k: v for k, v in config.items() if k not in model.config}
    return model.to(device).eval()
