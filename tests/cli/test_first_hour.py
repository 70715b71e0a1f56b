"""The first hour: feedback in a log file, every recipe problem at once and before the data, metric dependencies
before the first step, Accelerate's mixed precision, trackers, Hugging Face datasets, the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import load_recipe
from genzoo.train.trainer import Trainer
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import ROOT, write_recipe


def test_a_log_file_gets_a_start_line_and_progress_before_log_every(tmp_path):
    """Off a terminal (stdout to a file) the run says what it trains and how, then shows progress between the
    log_every lines (here every step: GENZOO_PROGRESS_SECONDS=0)."""
    recipe = write_recipe(tmp_path, train={"steps": 6, "log_every": 50})
    log = tmp_path / "train.log"
    with open(log, "w") as f:
        subprocess.run(
            [sys.executable, "-m", "genzoo", "train", str(recipe)],
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
            env={**os.environ, **ONE_THREAD, "GENZOO_PROGRESS_SECONDS": "0"},
        )
    lines = log.read_text().splitlines()
    assert lines[0].startswith("training 'tiny': digits (1500 images 1x8x8), mlp_aae + gaussian")
    assert "threads (OMP_NUM_THREADS)" in lines[0] and "mixed precision no" in lines[0]
    assert lines[1].startswith("step 1/6 (") and "img/s" in lines[1]
    first_log_line = next(i for i, line in enumerate(lines) if "steps_averaged" in line)
    assert first_log_line > 1  # progress came before the first log_every line (which is the last step here)
    env = json.loads((tmp_path / "runs" / "tiny" / "environment.json").read_text())
    assert env["threads"] == 1 and env["mixed_precision"] == "no" and env["device"] == "cpu"


def test_three_recipe_errors_are_named_together_before_any_data_is_read(tmp_path):
    """One run names every problem; the data (a folder that does not exist) is never touched."""
    recipe = write_recipe(
        tmp_path,
        data={"name": "mnist", "root": str(tmp_path / "no-mnist-here"), "download": False},
        model={"latent_dim": 0},
        prior={"sdt": 2.0},
        train={"log_every": 0},
    )
    proc = run_cli("train", recipe, env=ONE_THREAD, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the recipe has 3 problems" in proc.stderr
    for problem in ("'model.latent_dim' must be >= 1", "unknown recipe key 'prior.sdt'", "'train.log_every' must be"):
        assert problem in proc.stderr, problem
    assert "no-mnist-here" not in proc.stderr and not (tmp_path / "runs").exists()


def test_a_missing_fid_dependency_fails_before_the_first_step(tmp_path, monkeypatch):
    """train.eval with FID and no clean-fid: the error comes before any training (it used to come at the first
    evaluation, minutes in, before any checkpoint)."""
    monkeypatch.setitem(sys.modules, "cleanfid", None)  # import cleanfid -> ImportError
    monkeypatch.setitem(sys.modules, "cleanfid.resize", None)
    recipe = write_recipe(tmp_path, train={"eval": {"metric": "fid", "every_steps": 20}})
    with pytest.raises(GenzooError, match="need clean-fid"):
        Trainer(load_recipe(recipe)).fit()
    assert not (tmp_path / "runs" / "tiny" / "metrics.jsonl").exists()


def test_accelerates_mixed_precision_setting_reaches_the_trainer(tmp_path):
    """The recipe leaves mixed_precision unset: ACCELERATE_MIXED_PRECISION (what `accelerate launch
    --mixed_precision` and `accelerate config` set) decides, and the resolved value is saved with the run."""
    recipe = write_recipe(tmp_path, train={"steps": 2, "log_every": 1})
    run_cli("train", recipe, env={**ONE_THREAD, "ACCELERATE_MIXED_PRECISION": "bf16"})
    env = json.loads((tmp_path / "runs" / "tiny" / "environment.json").read_text())
    assert env["mixed_precision"] == "bf16"
    assert load_recipe(recipe).train.mixed_precision is None


def test_an_unknown_tracker_is_named_with_the_known_ones(tmp_path):
    recipe = write_recipe(tmp_path, train={"log_with": ["tensorbaord"]})
    with pytest.raises(GenzooError) as raised:
        Trainer(load_recipe(recipe)).fit()
    assert "did you mean 'tensorboard'" in str(raised.value) and "mlflow" in raised.value.fix


def test_a_hugging_face_dataset_on_disk_trains(tmp_path):
    """data: {name: hf_dataset, path: <save_to_disk folder>}: the image column decoded by genzoo, splits mapped."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = torch.Generator().manual_seed(0)

    def split(n):
        images = [
            Image.fromarray((torch.rand(8, 8, generator=rng) * 255).to(torch.uint8).numpy(), mode="L")
            for _ in range(n)
        ]
        return datasets.Dataset.from_dict({"picture": images}).cast_column("picture", datasets.Image())

    folder = tmp_path / "hf"
    datasets.DatasetDict({"train": split(60), "validation": split(20)}).save_to_disk(str(folder))
    data = {"name": "hf_dataset", "path": str(folder), "image_column": "picture", "test_split": "validation"}
    data["channels"] = 1
    recipe = write_recipe(tmp_path, data=data, train={"batch_size": 20, "steps": 4, "log_every": 2})
    run = genzoo.fit(load_recipe(recipe))
    model = genzoo.load(run)
    assert model.config["image_shape"] == [1, 8, 8]
    result = genzoo.evaluate(run, ["reconstruction"])["reconstruction"]
    assert result["images"] == 20  # the validation split, as data.test_split says
    with pytest.raises(GenzooError, match="has no column 'image'"):
        load_recipe(recipe, ["data.image_column=image"]) and genzoo.fit(
            load_recipe(recipe, ["data.image_column=image"])
        )


def test_the_python_api_example_runs(tmp_path):
    """examples/python_api.py: a recipe built in code, a user's torch Dataset, load, sample, evaluate."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python_api.py"), "--out", str(tmp_path), "--steps", "40"],
        capture_output=True,
        text=True,
        env={**os.environ, **ONE_THREAD},
    )
    assert proc.returncode == 0, proc.stderr
    assert "samples (16, 1, 8, 8), codes (16, 4)" in proc.stdout
    mse = float(proc.stdout.strip().splitlines()[-1].split(":")[-1])
    assert 0 < mse < 0.2
    config = json.loads((tmp_path / "digits-from-python" / "model" / "config.json").read_text())
    assert config["data"] == {"name": "python", "description": "sklearn digits as a torch Dataset"}
    with pytest.raises(GenzooError, match="pass the data again"):
        genzoo.evaluate(tmp_path / "digits-from-python", ["reconstruction"])


def test_threads_follow_the_cores_in_use_now_and_a_resume_keeps_them(monkeypatch, tmp_path):
    """Automatic threads: the cores that other work is using now leave the rest, at least one; a resumed run keeps
    its count (another count sums in another order and the resume would no longer equal the uninterrupted run)."""
    from genzoo.train import environment
    from genzoo.train.environment import choose_threads

    cpu = torch.device("cpu")
    queue = tmp_path / "loadavg"
    monkeypatch.setattr(environment, "RUN_QUEUE", queue)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    queue.write_text("2.60 1.00 0.50 3/200 4242\n")  # this process and two others runnable
    assert choose_threads(None, cpu, 1)[0] == 2
    assert choose_threads(None, cpu, 2)[0] == 2  # a launch of 2: one other task, 3 cores between the two
    queue.write_text("9.00 9.00 9.00 12/200 4242\n")
    assert choose_threads(None, cpu, 1)[0] == 1
    assert choose_threads(None, cpu, 1, previous=3) == (3, "as when this run started; set train.threads to change it")
    assert choose_threads(2, cpu, 1, previous=3) == (2, "train.threads")
    # The case the 1-minute average got wrong: a job just ended, its load lingers, nothing else runs.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.7, 0.5, 0.4))
    queue.write_text("0.70 0.50 0.40 1/120 4242\n")
    assert choose_threads(None, cpu, 1) == (2, "2 cores, other runnable tasks 0.0; set train.threads to choose")
    queue.unlink()  # no run queue to read (not Linux): the load average
    assert choose_threads(None, cpu, 1) == (1, "2 cores, load 0.7; set train.threads to choose")


def test_a_run_started_with_a_precision_keeps_it_when_the_recipe_leaves_it_unset(tmp_path):
    """Runs written before mixed_precision became optional (saved as 'no') resume under a recipe that leaves it
    unset, instead of being refused as a changed recipe."""
    recipe = write_recipe(tmp_path, train={"steps": 4, "log_every": 2, "mixed_precision": "no"})
    genzoo.fit(load_recipe(recipe))
    unset = write_recipe(tmp_path, train={"steps": 8, "log_every": 2})
    run = genzoo.fit(load_recipe(unset))
    assert json.loads((run / "environment.json").read_text())["mixed_precision"] == "no"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6, 8]
