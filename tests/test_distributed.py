"""A real multi-process `accelerate launch` (CPU, gloo) against the single-process run."""

import subprocess
import sys

import pytest
import torch

from conftest import run_cli, write_recipe
from genzoo.io import load_tensors
from test_registry import make_plugin

# A deterministic autoencoder (no dropout, no sampling), so that 2 processes x 25 images must give the same
# update as 1 process x 50 images, up to float summation order.
DETERMINISTIC_AE = """
    import torch
    import torch.nn.functional as F
    from genzoo.hookspecs import hookimpl
    from genzoo.models.base import GenerativeAutoencoder, Phase
    from genzoo.models.blocks import mlp

    class PlainAE(GenerativeAutoencoder):
        '''Deterministic MLP autoencoder (test fixture).'''
        def __init__(self, image_shape, latent_dim: int = 4, hidden: int = 32):
            super().__init__(image_shape)
            self.encoder = mlp([64, hidden, latent_dim])
            self.decoder = mlp([latent_dim, hidden, 64])
        def encode(self, x):
            return self.encoder(x.flatten(1))
        def decode(self, z):
            return torch.sigmoid(self.decoder(z)).view(-1, *self.image_shape)
        def phases(self):
            return [Phase("reconstruction", ("encoder", "decoder"), self.loss, 1e-2)]
        def loss(self, x):
            loss = F.mse_loss(self.decode(self.encode(x)), x)
            return loss, {"reconstruction": loss.detach()}

    @hookimpl
    def genzoo_register_components(models):
        models.register("plain_ae", PlainAE)
"""


def launch(recipe, processes, env, *overrides):
    # accelerate 1.x: `--cpu` always starts one process; `--multi_gpu` starts N, and genzoo picks gloo on a
    # machine without GPUs.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "genzoo", "train",
           str(recipe), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def env(tmp_path):
    import os

    site = tmp_path / "site"
    site.mkdir()
    make_plugin(site, "genzoo-test-ae", "genzoo_test_ae", DETERMINISTIC_AE)
    return {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}


def test_two_processes_agree_with_one(tmp_path, env):
    base = {"data": {"name": "digits"}, "model": {"name": "plain_ae"},
            "train": {"batch_size": 50, "steps": 60, "log_every": 20, "checkpoint_every": 30, "sample_every": 1000}}
    one = write_recipe(tmp_path, "one", base=base)
    two = write_recipe(tmp_path, "two", base=base)
    run_cli("train", one, env=env)
    proc = launch(two, 2, env)
    assert proc.stdout.count("done:") == 1  # only the main process reports
    a = load_tensors(tmp_path / "runs" / "one" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "runs" / "two" / "model" / "model.safetensors")
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-4), (k, (a[k] - b[k]).abs().max())
    # the two processes really did differ in data: every checkpoint holds one RNG state per process
    ckpt = tmp_path / "runs" / "two" / "checkpoints" / "step-0000060"
    assert (ckpt / "rng-rank0.safetensors").is_file() and (ckpt / "rng-rank1.safetensors").is_file()


def test_two_process_aae_run_resumes(tmp_path):
    """The real MLP AAE under 2 processes: stop at 20, resume to 40 with the same launch."""
    import os

    recipe = write_recipe(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch(recipe, 2, env, "train.steps=20")
    proc = launch(recipe, 2, env)
    assert "resumed" in proc.stdout and "step 20" in proc.stdout
    log = (tmp_path / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in log] == [10, 20, 30, 40]
