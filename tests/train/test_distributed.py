"""A real multi-process `accelerate launch` (CPU, gloo) against the single-process run."""

import subprocess

import pytest
import torch

from genzoo.core.io import load_tensors
from tests.helpers.cli import launch, launch_command, run_cli
from tests.helpers.plugins import make_plugin
from tests.helpers.recipes import write_recipe

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


@pytest.fixture
def env(tmp_path):
    import os

    site = tmp_path / "site"
    site.mkdir()
    make_plugin(site, "genzoo-test-ae", "genzoo_test_ae", DETERMINISTIC_AE)
    return {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}


def test_two_processes_stopped_and_resumed_agree_with_one(tmp_path, env):
    base = {
        "data": {"name": "digits"},
        "model": {"name": "plain_ae"},
        "train": {"batch_size": 50, "steps": 60, "log_every": 20, "checkpoint_every": 30, "sample_every": 1000},
    }
    one = write_recipe(tmp_path, "one", base=base)
    two = write_recipe(tmp_path, "two", base=base)
    run_cli("train", one, env=env)
    launch(two, 2, env, "train.steps=30")  # stopped half-way; the same launch resumes it from its checkpoint
    proc = launch(two, 2, env)
    assert "resumed" in proc.stdout and "step 30" in proc.stdout
    assert proc.stdout.count("done:") == 1  # only the main process reports
    a = load_tensors(tmp_path / "runs" / "one" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "runs" / "two" / "model" / "model.safetensors")
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-4), (k, (a[k] - b[k]).abs().max())
    # the two processes really did differ in data: every checkpoint holds one RNG state per process
    ckpt = tmp_path / "runs" / "two" / "checkpoints" / "step-0000060"
    assert (ckpt / "rng-rank0.safetensors").is_file() and (ckpt / "rng-rank1.safetensors").is_file()


@pytest.mark.slow  # 17-21 s; a resumed two-process run is also checked against one process above
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


@pytest.mark.slow  # 17-21 s: moved out of the default run to keep it under 10 minutes
def test_a_signal_to_one_process_stops_all_of_them_at_the_same_step(tmp_path):
    """SIGINT to rank 1 only (a scheduler or a Ctrl-C reaching one process): both processes agree to stop after
    the same step, write one checkpoint with both RNG states and exit; the same launch resumes from it."""
    import os
    import signal
    import time
    from pathlib import Path

    recipe = write_recipe(tmp_path, train={"steps": 100_000, "log_every": 10, "checkpoint_every": 100_000})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(
        launch_command(recipe, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    metrics = tmp_path / "runs" / "tiny" / "metrics.jsonl"
    try:
        deadline = time.time() + 120
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
            assert time.time() < deadline and launcher.poll() is None, "training did not start"
            time.sleep(0.2)
        workers = {}
        for proc in Path("/proc").iterdir():  # the two genzoo workers, by their LOCAL_RANK
            try:
                if (
                    str(recipe) in (proc / "cmdline").read_text()
                    and "accelerate" not in (proc / "cmdline").read_text()
                ):
                    environ = dict(kv.split("=", 1) for kv in (proc / "environ").read_text().split("\0") if "=" in kv)
                    workers[environ.get("LOCAL_RANK")] = int(proc.name)
            except (OSError, ValueError):
                continue
        assert set(workers) == {"0", "1"}, workers
        os.kill(workers["1"], signal.SIGINT)
        out, err = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    # each worker exits 130 (stopped by a signal, as a single process does), so the launcher reports failure
    assert launcher.returncode != 0 and err.count("stopped; run the same command again") == 2, out + err
    assert "hang" not in err.lower() and "timeout" not in err.lower()
    latest = (tmp_path / "runs" / "tiny" / "checkpoints" / "latest").read_text().strip()
    ckpt = tmp_path / "runs" / "tiny" / "checkpoints" / latest
    assert (ckpt / "rng-rank0.safetensors").is_file() and (ckpt / "rng-rank1.safetensors").is_file()
    stopped_at = int(latest.split("-")[1])
    assert stopped_at > 20
    proc = launch(recipe, 2, env, f"train.steps={stopped_at + 10}")
    assert "resumed" in proc.stdout and f"step {stopped_at}" in proc.stdout
