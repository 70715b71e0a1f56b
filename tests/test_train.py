"""Real (small) training runs: learning, bit-exact resume, atomic checkpoints, non-finite losses."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, run_cli, write_recipe

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.io import load_tensors
from genzoo.core.recipe import load_recipe
from genzoo.train.checkpoint import Checkpoints
from genzoo.train.trainer import Trainer


def train(recipe_path, *overrides):
    return Trainer(load_recipe(recipe_path, list(overrides))).fit()


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"tensor {k} differs"


def checkpoint_tensors(run_dir):
    latest = Checkpoints(run_dir).latest()
    return load_tensors(latest / "model.safetensors"), load_tensors(latest / "optimizers.safetensors")


def test_quickstart_learns(tmp_path):
    """The shipped quickstart recipe, shortened: reconstruction error falls far below the untrained model's."""
    from genzoo.core.registry import DATASETS, build
    from genzoo.metrics.reconstruction import reconstruction
    from genzoo.modelfile.folder import create_model

    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml", [f"output_dir={tmp_path}", "train.epochs=25"])
    run = Trainer(recipe).fit()
    test_set, _ = build(DATASETS, recipe.data, "data", split="test")
    torch.manual_seed(0)
    untrained = create_model(recipe.model, recipe.prior, test_set.image_shape).eval()
    before = reconstruction(untrained, test_set)["mse"]
    after = reconstruction(genzoo.load(run), test_set)["mse"]
    assert before > 0.08 and after < 0.5 * before, (before, after)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 25 * 15 and log[-1]["loss/reconstruction"] < log[0]["loss/reconstruction"]
    assert (run / "samples" / f"step-{25 * 15:07d}.png").is_file()


def test_resume_equals_uninterrupted_bit_for_bit(tmp_path):
    full = write_recipe(tmp_path, "full", train={"ema_half_life_images": 500.0})
    parts = write_recipe(tmp_path, "parts", train={"ema_half_life_images": 500.0})
    train(full)
    train(parts, "train.steps=20")  # stops at 20 (a checkpoint), as an interrupted run would
    assert Checkpoints(tmp_path / "runs" / "parts").latest().name == "step-0000020"
    train(parts)  # the same command again resumes to 40
    a, b = checkpoint_tensors(tmp_path / "runs" / "full"), checkpoint_tensors(tmp_path / "runs" / "parts")
    assert any(k.startswith("ema.") for k in a[0])
    assert_same_tensors(a[0], b[0])
    assert_same_tensors(a[1], b[1])
    # metrics.jsonl reads as one run
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "runs" / "parts" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [10, 20, 30, 40]


def test_ctrl_c_checkpoints_and_resumes_exactly(tmp_path):
    """A real SIGINT to a real `genzoo train`: it checkpoints, exits 130, and the rerun ends bit-exact."""
    settings = {"steps": 600, "log_every": 5, "checkpoint_every": 10_000, "sample_every": 10_000}
    full = write_recipe(tmp_path, "full", train=settings)
    cut = write_recipe(tmp_path, "cut", train=settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "genzoo", "train", str(cut)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log = tmp_path / "runs" / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (log.is_file() and log.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume" in err
    stopped_at = int(Checkpoints(tmp_path / "runs" / "cut").latest().name.split("-")[1])
    assert 10 <= stopped_at < 600
    run_cli("train", cut)
    train(full)
    a, b = checkpoint_tensors(tmp_path / "runs" / "full"), checkpoint_tensors(tmp_path / "runs" / "cut")
    assert_same_tensors(a[0], b[0])
    assert_same_tensors(a[1], b[1])


def test_a_crash_during_save_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    recipe = write_recipe(tmp_path)
    train(recipe, "train.steps=20")
    good = Checkpoints(tmp_path / "runs" / "tiny").latest()

    def dies_half_way(self, tmp, model_tensors, optimizers, state):
        (tmp / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Checkpoints, "write_main", dies_half_way)
    with pytest.raises(GenzooError, match="could not write the checkpoint of step 40 .disk full.; the last good"):
        train(recipe)
    monkeypatch.undo()
    assert not list((tmp_path / "runs" / "tiny" / "checkpoints").glob(".tmp-*"))  # the partial one is removed
    assert Checkpoints(tmp_path / "runs" / "tiny").latest() == good
    Checkpoints.read(good, 0)  # still whole: checksums verify
    train(recipe)  # resumes from step 20 past the debris
    assert Checkpoints(tmp_path / "runs" / "tiny").latest().name == "step-0000040"


def test_corrupt_checkpoint_and_changed_recipe_are_refused(tmp_path):
    recipe = write_recipe(tmp_path)
    train(recipe, "train.steps=20")
    with pytest.raises(GenzooError, match="model.hidden"):
        train(recipe, "model.hidden=32")
    latest = Checkpoints(tmp_path / "runs" / "tiny").latest()
    weights = latest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(GenzooError, match="missing or corrupt"):
        train(recipe)


def test_non_finite_loss_stops_cleanly(tmp_path):
    recipe = write_recipe(tmp_path, train={"steps": 200, "checkpoint_every": 20, "log_every": 10})
    train(recipe, "train.steps=20")
    before = checkpoint_tensors(tmp_path / "runs" / "tiny")[0]
    proc = run_cli(
        "train", recipe, "train.phases.reconstruction.lr=1e12", "train.phases.generator.lr=1e12", check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "became NaN or infinite" in proc.stderr and "step-0000020" in proc.stderr and "train.phases" in proc.stderr
    latest = Checkpoints(tmp_path / "runs" / "tiny").latest()
    assert latest.name == "step-0000020"
    assert_same_tensors(before, checkpoint_tensors(tmp_path / "runs" / "tiny")[0])


def test_phases_change_only_their_own_parameters(tmp_path):
    trainer = Trainer(load_recipe(write_recipe(tmp_path)))
    trainer._setup()
    x = torch.rand(50, 1, 8, 8)
    for phase in trainer.phases:
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        only = Trainer.__new__(Trainer)
        only.__dict__.update(trainer.__dict__, phases=[phase])
        only._train_step(x)
        changed = {n.split(".")[0] for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)}
        assert changed == set(phase.modules), (phase.name, changed)


def test_tensorboard_tracker_gets_the_same_numbers(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(write_recipe(tmp_path, train={"log_with": ["tensorboard"], "steps": 20}))
    events = list(run.rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    scalars = acc.Scalars("loss/reconstruction")
    assert [s.step for s in scalars] == [10, 20]
    assert abs(scalars[-1].value - logged["loss/reconstruction"]) < 1e-6
