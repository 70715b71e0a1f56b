from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
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


# Tiny networks gain nothing from a second intra-op thread, and on a busy 2-core machine two threads stall each
# other (measured: 50 s instead of 6 s for test_alae_learns_on_digits). Modules opt in with
# `pytestmark = pytest.mark.usefixtures("one_torch_thread")`; CLI subprocesses get ONE_THREAD as their env.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def run_cli(*args, cwd=None, env=None, timeout=None, check=True):
    """Run `genzoo ...` as a real subprocess; returns CompletedProcess. No wall-clock limit of its own (a loaded
    machine is slow, not wrong): pytest-timeout's per-test limit catches a hang."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "genzoo", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"genzoo {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data '{path}' is not here (tests look for ../shared/data next to the checkout)")
    return path


@pytest.fixture
def tiny_recipe(tmp_path):
    return write_recipe(tmp_path)
