"""The tiny recipes the tests train, write_recipe to vary them, and the real data under ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("GENZOO_SHARED_DATA", ROOT.parent / "shared" / "data"))

# A small but real quickstart: digits, MLP AAE with a Gaussian prior, the quickstart's learning rates.
TINY = {
    "data": {"name": "digits"},
    "model": {"name": "mlp_aae", "latent_dim": 4, "hidden": 64, "dropout": 0.1},
    "prior": {"name": "gaussian", "std": 2.0},
    "train": {
        "batch_size": 50,
        "steps": 40,
        "log_every": 10,
        "sample_every": 20,
        "checkpoint_every": 20,
        "phases": {"reconstruction": {"lr": 1e-3}, "discriminator": {"lr": 5e-4}, "generator": {"lr": 5e-4}},
    },
}
# TINY's learning rates with a prior that matches codes itself (mbrce): its phases are reconstruction and prior.
TINY_MBRCE_PHASES = {"reconstruction": {"lr": 1e-3}, "prior": {"lr": 5e-4}}

# The one tiny MLP ALAE (digits, Gaussian prior); test_alae_learns_on_digits's thresholds were measured with it.
TINY_ALAE = {
    "data": {"name": "digits"},
    "model": {"name": "mlp_alae", "latent_dim": 8, "hidden": 96, "mapping_layers": 3},
    "prior": {"name": "gaussian"},
    "train": {"batch_size": 64, "steps": 40, "log_every": 10, "sample_every": 10**6, "checkpoint_every": 10**6},
}

# A small convolutional VAE (torch-vae's network, BCE reconstruction) that learns on digits in 90 steps.
TINY_VAE = {
    "data": {"name": "digits"},
    "model": {"name": "vae", "latent_dim": 8, "max_filters": 32, "layers": 2, "reconstruction": "bce"},
    "prior": {"name": "gaussian", "std": 1.0},
    "train": {
        "batch_size": 50,
        "steps": 90,
        "log_every": 15,
        "sample_every": 90,
        "checkpoint_every": 90,
        "phases": {"vae": {"lr": 3e-3}},
    },
}

# A small latent Bernoulli autoencoder (no prior section: its sampler is fitted at export).
TINY_LBAE = {
    "data": {"name": "digits"},
    "model": {
        "name": "lbae",
        "latent_dim": 24,
        "base_channels": 16,
        "max_channels": 32,
        "reconstruction": "bce",
    },
    "train": {
        "batch_size": 50,
        "steps": 90,
        "log_every": 15,
        "sample_every": 90,
        "checkpoint_every": 90,
        "phases": {"autoencoder": {"lr": 2e-3}},
    },
}


def write_recipe(folder: Path, name: str = "tiny", base: dict | None = None, **sections) -> Path:
    """`base` (TINY) with `sections` merged into its own, or replacing a component section of another name. A model
    of another name drops the base's train.phases (they name the base model's phases) unless `train` gives others."""
    recipe = {k: dict(v) for k, v in (base or TINY).items()}
    for key, value in sections.items():
        same = isinstance(value, dict) and value.get("name", recipe.get(key, {}).get("name")) == recipe.get(
            key, {}
        ).get("name")
        recipe[key] = {**recipe.get(key, {}), **value} if same else value
    base = base or TINY
    inherited = recipe.get("train", {}).get("phases") == base.get("train", {}).get("phases")
    if recipe.get("model", {}).get("name") != base.get("model", {}).get("name") and inherited:
        recipe.get("train", {}).pop("phases", None)
    recipe.setdefault("output_dir", str(folder / "runs"))
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data '{path}' is not here (tests look for ../shared/data next to the checkout)")
    return path
