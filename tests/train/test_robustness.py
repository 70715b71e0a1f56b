"""Nothing lost, nothing silently wrong: kills at every write, torn logs, flipped bytes, full disks, two trainings on
one run folder, and the bounds every recipe key declares."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import pytest
import torch

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.io import load_tensors
from genzoo.core.recipe import load_recipe
from genzoo.train.checkpoint import Checkpoints
from genzoo.train.trainer import Trainer
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import write_recipe


def train(recipe_path, *overrides):
    return Trainer(load_recipe(recipe_path, list(overrides))).fit()


def model_state(run):
    return load_tensors(run / "model" / "model.safetensors")


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"tensor {k} differs"


# -- a kill at every write of the last checkpoint and of the final export ---------------------------------------------
WRITES = [  # (module, name): every function through which a checkpoint or an export reaches the disk
    ("genzoo.train.checkpoint", "save_tensors"),
    ("genzoo.train.checkpoint", "write_json"),
    ("genzoo.train.checkpoint", "atomic_write_text"),
    ("genzoo.modelfile.folder", "save_tensors"),
    ("genzoo.modelfile.folder", "write_json"),
    ("genzoo.core.io", "replace_dir"),
    ("os", "replace"),
    ("pathlib.Path", "rename"),
]


def _run_killed_at(recipe_path, overrides, kill_at, counter):
    """Child process: train; from the final checkpoint on, die (os._exit, like SIGKILL: no cleanup runs) just
    before the `kill_at`-th write. Counts the writes when kill_at is 0."""
    import importlib

    torch.set_num_threads(1)
    recipe = load_recipe(recipe_path, overrides)
    trainer = Trainer(recipe)
    armed = {"on": False, "n": 0}
    original_save = Trainer.save_checkpoint

    def save_checkpoint(self):
        armed["on"] = self.step >= self.total_steps
        return original_save(self)

    def wrap(fn):
        def wrapper(*args, **kwargs):
            if armed["on"]:
                armed["n"] += 1
                if armed["n"] == kill_at:
                    os._exit(9)
            return fn(*args, **kwargs)

        return wrapper

    Trainer.save_checkpoint = save_checkpoint
    for module, name in WRITES:
        if module == "pathlib.Path":
            import pathlib

            pathlib.Path.rename = wrap(pathlib.Path.rename)
        else:
            mod = importlib.import_module(module)
            setattr(mod, name, wrap(getattr(mod, name)))
    trainer.fit()
    counter.value = armed["n"]
    os._exit(0)


def test_a_kill_at_any_write_of_the_end_is_repaired_by_the_rerun(tmp_path):
    """Killed before each write of the final checkpoint and export in turn (and after the last one), the same command
    run again ends with checkpoints/latest and model/ equal to an uninterrupted run's. Before, a kill after the
    checkpoint's commit left model/ at the previous step for good ("already finished")."""
    ctx = multiprocessing.get_context("fork")
    reference = write_recipe(tmp_path, "reference")
    train(reference)
    expected = model_state(tmp_path / "runs" / "reference")
    stopped = write_recipe(tmp_path, "stopped")
    train(stopped, "train.steps=20")  # a run part-way, copied for every kill point
    template = tmp_path / "runs" / "stopped"

    def copy_of_template(label):  # the stopped run in a folder of its own (output_dir may change on resume)
        shutil.copytree(template, tmp_path / label / "stopped")
        return [f"output_dir={tmp_path / label}", "train.steps=40"]

    counter = ctx.Value("i", 0)
    child = ctx.Process(target=_run_killed_at, args=(stopped, copy_of_template("count"), 0, counter))
    child.start()
    child.join(120)
    writes = counter.value
    print(f"{writes} writes after the last step")
    assert child.exitcode == 0 and writes >= 12, writes  # rank file, weights, optimisers, manifest, latest, export...

    for kill_at in range(1, writes + 1):
        overrides = copy_of_template(f"kill{kill_at}")
        child = ctx.Process(target=_run_killed_at, args=(stopped, overrides, kill_at, counter))
        child.start()
        child.join(120)
        assert child.exitcode == 9, f"the kill at write {kill_at} did not happen"
        run = train(stopped, *overrides)  # the user's rerun
        assert Checkpoints(run).latest().name == "step-0000040", kill_at
        assert json.loads((run / "model" / "config.json").read_text())["step"] == 40, kill_at
        assert_same(model_state(run), expected)
        assert not list((run / "checkpoints").glob(".tmp-*")), kill_at
        genzoo.load(run)  # whole, checksum included


# -- logs, weights, disks, locks ----------------------------------------------------------------------------------
def test_a_torn_last_log_line_does_not_stop_the_resume(tmp_path):
    """A crash or a full disk mid-append tears metrics.jsonl's last line; the resume drops it (it used to fail every
    time with a JSONDecodeError traceback)."""
    recipe = write_recipe(tmp_path)
    run = train(recipe, "train.steps=20")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "loss/recon')
    train(recipe, "train.steps=40")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole
    assert [r["step"] for r in records if "loss/reconstruction" in r] == [10, 20, 30, 40]


def test_the_log_says_how_many_steps_each_line_averages(tmp_path):
    """After a resume (and at the end) a line averages fewer than log_every steps: it says so."""
    recipe = write_recipe(tmp_path)
    run = train(recipe, "train.steps=15")
    train(recipe, "train.steps=40")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["steps_averaged"]) for r in records] == [(10, 10), (15, 5), (20, 5), (30, 10), (40, 10)]


def test_a_flipped_byte_in_the_weights_is_refused(tmp_path):
    """model.safetensors carries its sha256 in config.json: a flipped byte (disk, copy, upload) no longer loads and
    samples with changed numbers; GENZOO_SKIP_WEIGHTS_CHECK=1 loads weights edited on purpose."""
    run = train(write_recipe(tmp_path))
    weights = run / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x10  # inside the last tensor: still a valid safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(GenzooError, match="does not match the sha256"):
        genzoo.load(run)
    proc = run_cli("sample", run, "-n", "4", env=ONE_THREAD, check=False)
    assert proc.returncode == 1 and "does not match the sha256" in proc.stderr and "Traceback" not in proc.stderr
    os.environ["GENZOO_SKIP_WEIGHTS_CHECK"] = "1"
    try:
        genzoo.load(run)
    finally:
        del os.environ["GENZOO_SKIP_WEIGHTS_CHECK"]


def _disk_full_for(monkeypatch, part: str):
    """safetensors' save_file fails as on a full disk (its own ENOSPC error type) for paths containing `part`;
    returns the real function, to put back when space is freed."""
    import safetensors.torch
    from safetensors import SafetensorError

    real = safetensors.torch.save_file

    def full_disk(tensors, filename, metadata=None):
        if part in str(filename):
            raise SafetensorError(
                "Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                'message: "No space left on device" })'
            )
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    return real


def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """safetensors reports ENOSPC as its own error type; the trainer names the problem, removes the partial
    checkpoint and keeps the last good one (it used to print a SafetensorError traceback and leave .tmp-step-*)."""
    import safetensors.torch

    recipe = write_recipe(tmp_path)
    run = train(recipe, "train.steps=20")
    real = _disk_full_for(monkeypatch, "step-0000040")
    with pytest.raises(GenzooError) as raised:
        train(recipe, "train.steps=40")
    message = str(raised.value)
    assert "could not write the checkpoint of step 40" in message and "No space left on device" in message
    assert "step-0000020) is intact" in message and "free disk space" in message
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert Checkpoints(run).latest().name == "step-0000020"
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    train(recipe, "train.steps=40")  # space freed: the same command resumes
    assert Checkpoints(run).latest().name == "step-0000040"


def test_a_full_disk_during_the_export_says_export_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    """model/ is written after its checkpoint is committed, in the same handler: a failure there is named as the
    export (it used to say "could not write the checkpoint" while that checkpoint was whole)."""
    import safetensors.torch

    recipe = write_recipe(tmp_path)
    run = train(recipe, "train.steps=20")
    real = _disk_full_for(monkeypatch, ".model.tmp")
    with pytest.raises(GenzooError) as raised:
        train(recipe, "train.steps=40")
    message = str(raised.value)
    assert "could not export the model of step 40" in message and "could not write the checkpoint" not in message
    assert "No space left on device" in message and ".model.tmp" in message
    assert "step-0000040) is intact" in message and "free disk space" in message
    assert not (run / ".model.tmp").exists()
    assert Checkpoints(run).latest().name == "step-0000040"
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    train(recipe, "train.steps=40")  # space freed: the same command writes model/ again from step 40
    assert json.loads((run / "model" / "config.json").read_text())["step"] == 40


def test_two_trainings_on_one_run_folder(tmp_path):
    """The second training of a run folder stops at once naming the first (it used to crash mid-run)."""
    from genzoo.core.io import folder_lock

    recipe = write_recipe(tmp_path)
    with folder_lock(tmp_path / "runs" / "tiny", "training"):
        proc = run_cli("train", recipe, env=ONE_THREAD, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"is in use: training by process {os.getpid()}" in proc.stderr
    assert not (tmp_path / "runs" / "tiny" / "checkpoints").exists()


def test_a_model_from_a_missing_plugin_names_the_package(tmp_path):
    """config.json records where each component came from; without the plugin the error says what to install."""
    run = train(write_recipe(tmp_path))
    config_path = run / "model" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["components"] == {"model": "genzoo", "prior": "genzoo"}
    config["prior"]["name"] = "student_t_missing"
    config["components"]["prior"] = "genzoo-student-t"
    config_path.write_text(json.dumps(config))
    with pytest.raises(GenzooError) as raised:
        genzoo.load(run)
    assert "config.json" in str(raised.value) and "pip install" in raised.value.fix
    assert "genzoo-student-t" in raised.value.fix and "recipe key" not in str(raised.value)


def test_buffers_agree_across_processes(tmp_path):
    """A 2-process VAE (BatchNorm) run: each process records the fingerprint of its whole state (weights and
    buffers) in its checkpoint file; they are equal, because the running statistics are averaged before each
    checkpoint (they used to stay per-process while only parameters were checked)."""
    from tests.helpers.cli import launch

    recipe = write_recipe(
        tmp_path,
        "vae",
        base={
            "data": {"name": "digits", "size": 16},
            "model": {"name": "vae", "latent_dim": 4, "max_filters": 16},
            "prior": {"name": "gaussian"},
            "train": {"batch_size": 20, "steps": 6, "log_every": 3, "sample_every": 6, "checkpoint_every": 3},
        },
    )
    launch(recipe, 2, {**os.environ, **ONE_THREAD})
    latest = Checkpoints(tmp_path / "runs" / "vae").latest()
    prints = [json.loads((latest / f"rng-rank{r}.json").read_text())["model_state_sha256"] for r in (0, 1)]
    assert prints[0] == prints[1]
    exported = load_tensors(tmp_path / "runs" / "vae" / "model" / "model.safetensors")
    stats = [k for k in exported if k.endswith("running_mean")]
    assert stats and any(exported[k].abs().sum() > 0 for k in stats)  # the statistics did move


def test_gradients_are_averaged_in_bounded_buckets(monkeypatch):
    """A large model's gradients go in flat buckets of at most BUCKET_ELEMENTS (one oversized tensor alone), each
    averaged in place; small models still take a single collective."""
    import torch.distributed as dist

    import genzoo.train.distributed as distributed

    sizes = []

    def fake_all_reduce(t):
        sizes.append(t.numel())
        t.mul_(2)  # as if a second process held the same values

    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    monkeypatch.setattr(distributed, "BUCKET_ELEMENTS", 10)
    grads = [torch.full((n,), float(i + 1)) for i, n in enumerate((4, 5, 3, 20, 2))]
    distributed.all_reduce_mean(grads, 2)
    assert sizes == [9, 3, 20, 2]
    assert [g.unique().tolist() for g in grads] == [[1.0], [2.0], [3.0], [4.0], [5.0]]
    monkeypatch.setattr(distributed, "BUCKET_ELEMENTS", 1 << 23)
    sizes.clear()
    distributed.all_reduce_mean(grads, 2)
    assert sizes == [34]


def test_sample_streams_large_counts(tmp_path, monkeypatch):
    """`sample -n N --images-dir` decodes and writes one batch at a time (it used to build all N images in memory
    first); without --images-dir only the grid's 256 are drawn. The grid is the same either way."""
    from typer.testing import CliRunner

    from genzoo.cli import app
    from genzoo.models.base import GenerativeAutoencoder

    run = train(write_recipe(tmp_path))
    drawn = []
    real = GenerativeAutoencoder.sample

    def sample(self, n, generator=None):
        drawn.append(n)
        return real(self, n, generator=generator)

    monkeypatch.setattr(GenerativeAutoencoder, "sample", sample)
    result = CliRunner().invoke(
        app, ["sample", str(run), "-n", "700", "--batch-size", "300", "--images-dir", str(tmp_path / "many")]
    )
    assert result.exit_code == 0, result.output
    assert drawn == [300, 300, 100] and len(list((tmp_path / "many").glob("*.png"))) == 700
    grid = (run / "samples.png").read_bytes()
    drawn.clear()
    result = CliRunner().invoke(app, ["sample", str(run), "-n", "700", "--batch-size", "300"])
    assert result.exit_code == 0 and drawn == [256] and (run / "samples.png").read_bytes() == grid
