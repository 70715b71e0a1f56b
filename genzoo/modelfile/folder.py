"""The model folder: config.json + model.safetensors (diffusers' layout), and how to build, save and reload it.

config.json holds everything needed to rebuild the network through the registries: the resolved model and prior
sections of the recipe, the image shape, and the dataset section (so `reconstruct` knows its data).
Loading never runs code from the file: safetensors only, never pickle. torch loads on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genzoo.core.errors import GenzooError
from genzoo.core.io import atomic_dir, load_tensors, read_json, save_tensors, write_json

if TYPE_CHECKING:  # torch loads on first use, so `genzoo push` / `pull` stay light
    import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "genzoo-model/1"
SKIP_CHECK_ENV = "GENZOO_SKIP_WEIGHTS_CHECK"  # =1: load weights whose checksum differs (edited on purpose)


def create_model(model: dict, prior: dict | None = None, image_shape=(1, 28, 28)) -> torch.nn.Module:
    """Build an untrained architecture (and its prior) from recipe sections, e.g.
    create_model({"name": "mlp_aae"}, {"name": "gaussian"}); the resolved config rides along on `.config`."""
    from genzoo.core.registry import MODELS, PRIORS, build, resolve_section

    model = resolve_section(MODELS, model, "model", injected=("prior", "image_shape"))  # fills latent_dim
    injected = {"image_shape": tuple(image_shape)}
    if prior is not None:
        injected["prior"], prior = build(PRIORS, prior, "prior", dim=model.get("latent_dim"))
    net, model = build(MODELS, model, "model", **injected)
    net.config = {"format": FORMAT, "model": model, "prior": prior, "image_shape": list(image_shape)}
    return net


def _registered_name(registry, obj) -> str:
    for entry in registry.entries():
        if entry.obj is type(obj):
            return entry.name
    raise GenzooError(
        f"{type(obj).__name__} is not a registered {registry.kind}, so a saved model could not rebuild it",
        f"register it (@{registry.kind.upper()}S.register(name)) or build the model from a recipe",
    )


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def model_config(model) -> dict:
    """The model's config.json sections: from create_model / a load (`model.config`), else from the options its
    constructor and its prior's recorded (a model built in Python), checked like a recipe's."""
    if model.config is not None:
        return model.config
    from genzoo.core.recorded import recorded_options
    from genzoo.core.registry import MODELS, PRIORS, resolve_section

    options = recorded_options(model)
    prior = options.pop("prior", None)
    image_shape = list(options.pop("image_shape", model.image_shape))
    section = {"name": _registered_name(MODELS, model), **{k: _plain(v) for k, v in options.items()}}
    prior_section = None
    if prior is not None:
        own = {k: _plain(v) for k, v in recorded_options(prior).items() if k != "dim"}
        prior_section = resolve_section(PRIORS, {"name": _registered_name(PRIORS, prior), **own}, "prior", ("dim",))
    section = resolve_section(MODELS, section, "model", ("prior", "image_shape"))
    model.config = {"format": FORMAT, "model": section, "prior": prior_section, "image_shape": image_shape}
    return model.config


def save_pretrained(model: torch.nn.Module, folder: Path, extra: dict | None = None) -> Path:
    """Write `folder` = config.json + model.safetensors, whole or not at all (io.atomic_dir); a model built in
    Python gets its config from its recorded constructor options (model_config)."""
    from genzoo.core.io import file_sha256
    from genzoo.core.version import __version__

    model_config(model)
    with atomic_dir(folder) as tmp:
        save_tensors(tmp / WEIGHTS_NAME, model.state_dict(), metadata={"format": "pt"})
        config = {
            **model.config,
            "genzoo_version": __version__,
            "components": component_sources(model.config),
            "weights_sha256": file_sha256(tmp / WEIGHTS_NAME),  # checked by every load
            **(extra or {}),
        }
        write_json(tmp / CONFIG_NAME, config)
    return Path(folder)


def component_sources(config: dict) -> dict:
    """{"model": package, "prior": package}: where each component came from ("genzoo" or a plugin's package), so
    that loading without the plugin can say which package to install."""
    from genzoo.core.registry import MODELS, PRIORS

    sources = {}
    for key, registry in (("model", MODELS), ("prior", PRIORS)):
        name = (config.get(key) or {}).get("name")
        if name is not None and name in registry:
            sources[key] = registry.entry(name).source
    return sources


def exported_step(folder: Path) -> int | None:
    """The training step of an intact model folder (config readable, weights matching their checksum), else None."""
    from genzoo.core.io import file_sha256

    try:
        config = read_config(folder)
        intact = config.get("weights_sha256") == file_sha256(Path(folder) / WEIGHTS_NAME)
    except (GenzooError, OSError):
        return None
    return config.get("step") if intact else None


def check_weights_sha256(folder: Path, config: dict) -> None:
    """model.safetensors must be the file its config.json was written with (a flipped byte loads and runs)."""
    import os

    from genzoo.core.io import file_sha256

    expected = config.get("weights_sha256")
    if expected is None or os.environ.get(SKIP_CHECK_ENV) == "1":
        return  # written before checksums existed, or skipped on purpose
    if file_sha256(Path(folder) / WEIGHTS_NAME) != expected:
        raise GenzooError(
            f"'{Path(folder) / WEIGHTS_NAME}' does not match the sha256 its config.json records: it was corrupted "
            "or changed after export",
            f"re-export or download it again; if you edited the weights on purpose, set {SKIP_CHECK_ENV}=1",
        )


def _build_from_config(folder: Path, config: dict):
    """create_model from a config.json; its problems are named as config.json's, with the plugin to install."""
    try:
        return create_model(config["model"], config.get("prior"), config["image_shape"])
    except GenzooError as exc:
        problem = exc.problem.replace("recipe key '", "config.json key '")
        fix = exc.fix
        missing = [
            f"{package} (for {key} '{config[key]['name']}')"
            for key, package in (config.get("components") or {}).items()
            if package != "genzoo" and f"'{config[key]['name']}'" in exc.problem
        ]
        if missing:
            fix = f"this model needs the plugin package {', '.join(missing)}: pip install it"
        elif "config.json key" in problem:
            fix = "the folder was written by another genzoo version or edited: re-export it with this one"
        raise GenzooError(f"'{Path(folder) / CONFIG_NAME}': {problem}", fix) from None


def _translate_moved(config: dict, folder: Path) -> dict:
    """A config.json written before the optimiser settings left the model section loads: they move to its
    `train.phases` (kept in the model's extra_config, not its architecture), with one notice line."""
    from genzoo.core.recipe import translate_moved

    sections = {"model": config.get("model"), "prior": config.get("prior")}
    moved = translate_moved(sections, f"'{Path(folder) / CONFIG_NAME}'")
    return {**config, "model": moved["model"], "train": moved["train"]} if "train" in moved else config


def read_config(
    folder: Path, problem: str | None = None, fix: str = "point at a folder written by genzoo (runs/<name>/model)"
) -> dict:
    """config.json of a model folder, checked to be a genzoo model config (the one format check)."""
    config = read_json(Path(folder) / CONFIG_NAME, "model config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GenzooError(
            problem or f"'{Path(folder) / CONFIG_NAME}' is not a genzoo model config (format {FORMAT} expected)", fix
        )
    return config


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
        raise GenzooError(
            f"run '{path}' has checkpoints but no exported model/ yet",
            "let training reach its first checkpoint (train.checkpoint_every), or finish it",
        )
    raise GenzooError(
        f"'{path}' is neither a model folder (config.json + model.safetensors) nor a run folder",
        "give runs/<name> or its model/ folder",
    )


def load_folder(folder: Path, device: str | torch.device = "cpu", sampler: str | None = None) -> torch.nn.Module:
    """Rebuild a model from a local model folder, weights loaded, in eval mode (hub.load takes any source); with
    `sampler`, drawing its codes from that fitted sampler (samplers/<name>/)."""
    config = _translate_moved(read_config(folder), folder)
    model = _build_from_config(folder, config)
    state = load_tensors(folder / WEIGHTS_NAME, "model weights")  # a truncated or foreign file is named as such
    check_weights_sha256(folder, config)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise GenzooError(
            f"'{folder / WEIGHTS_NAME}' does not fit {config['model']['name']} ({str(exc).splitlines()[1:2]})",
            "the weights and config.json come from different models: re-export the run",
        ) from None
    if missing or unexpected:
        raise GenzooError(
            f"'{folder / WEIGHTS_NAME}' does not fit {config['model']['name']} "
            f"(missing {len(missing)} tensors, e.g. {missing[:2]}; "
            f"unexpected {len(unexpected)}, e.g. {unexpected[:2]})",
            "the weights and config.json come from different models: re-export the run",
        )
    model.config = {k: config[k] for k in ("format", "model", "prior", "image_shape", "data") if k in config}
    # what was true of the file (its checksum, sources, step) is not part of the model's own config
    model.extra_config = {k: v for k, v in config.items() if k not in model.config}
    model.folder = Path(folder)
    if sampler is not None:
        from genzoo.samplers.fit import attach_sampler

        attach_sampler(model, folder, sampler)
    return model.to(device).eval()


def check_weights_file(path: Path, what: str = "weights file") -> list[str]:
    """Check a safetensors file's header covers the whole file, without torch; returns its tensor names."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise GenzooError(f"{what} '{path}' does not exist", "check the path")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return list(f.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise GenzooError(
            f"{what} '{path}' is truncated or not a safetensors file ({exc})",
            "re-export it (a finished or resumed `genzoo train` writes model/ again)",
        ) from None


def model_revision(model, source=None) -> dict:
    """Which weights were evaluated: training step, sha256 of model.safetensors (when the folder is local)."""
    from genzoo.core.io import file_sha256

    extra = model.extra_config or {}
    revision = {
        "source": str(source) if source is not None else None,
        "step": extra.get("step"),
        **{k: extra[k] for k in ("genzoo_version", "revision", "repo_id", "commit") if k in extra},
    }
    try:
        folder = resolve_model_folder(source) if source is not None else None
    except (GenzooError, OSError):
        folder = None
    if folder is not None and (folder / WEIGHTS_NAME).is_file():
        revision["weights_sha256"] = file_sha256(folder / WEIGHTS_NAME)
    return revision
