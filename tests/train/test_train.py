"""Real (small) training runs: learning, bit-exact resume, atomic checkpoints, non-finite losses."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.io import load_tensors
from genzoo.core.recipe import TranslatedRecipe, load_recipe
from genzoo.train.checkpoint import Checkpoints
from genzoo.train.trainer import Trainer
from tests.helpers.cli import run_cli
from tests.helpers.phases import assert_each_phase_changes_only_its_modules
from tests.helpers.recipes import ROOT, TINY, write_recipe


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


def test_a_run_saved_before_a_new_option_existed_resumes(tmp_path):
    """A recipe.yaml written by an older genzoo lacks keys added since (here train.fused_optimizer and
    model.regularization_step); their defaults are what it trained with, so it resumes, bit for bit, while a
    really changed key is still refused."""
    full, parts = write_recipe(tmp_path, "full"), write_recipe(tmp_path, "parts")
    train(full)
    train(parts, "train.steps=20")
    saved = tmp_path / "runs" / "parts" / "recipe.yaml"
    old = yaml.safe_load(saved.read_text())
    del old["train"]["fused_optimizer"], old["model"]["regularization_step"]
    saved.write_text(yaml.safe_dump(old, sort_keys=False))
    with pytest.raises(GenzooError, match="model.hidden"):
        train(parts, "model.hidden=32")
    train(parts)
    assert_same_tensors(checkpoint_tensors(tmp_path / "runs" / "full")[0], checkpoint_tensors(saved.parent)[0])


def test_model_section_learning_rates_train_as_their_translated_form(tmp_path):
    """Before train.phases held every optimiser setting, TINY's learning rates were model keys. Such a recipe trains
    to the same weights and optimiser states, bit for bit, as the recipe written the new way; a run folder saved
    then resumes under the new recipe; and a model folder's config.json of then loads."""
    old_style = {**TINY["model"], "lr": 1e-3, "regularization_lr": 5e-4}
    old = write_recipe(tmp_path, "old", model=old_style, train={"phases": {}})
    with pytest.warns(TranslatedRecipe, match=r"recipe: mlp_aae.lr moved to train.phases.reconstruction.lr"):
        old_run = train(old)
    new_run = train(write_recipe(tmp_path, "new"))
    for a, b in zip(checkpoint_tensors(old_run), checkpoint_tensors(new_run)):
        assert_same_tensors(a, b)

    parts = write_recipe(tmp_path, "parts")
    train(parts, "train.steps=20")
    saved = yaml.safe_load((tmp_path / "runs" / "parts" / "recipe.yaml").read_text())
    saved["model"].update(lr=1e-3, regularization_lr=5e-4)  # as the run folder held it before the move
    saved["train"]["phases"] = {}
    (tmp_path / "runs" / "parts" / "recipe.yaml").write_text(yaml.safe_dump(saved))
    assert_same_tensors(checkpoint_tensors(train(parts))[0], checkpoint_tensors(new_run)[0])

    config_path = new_run / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"].update(lr=1e-3, regularization_lr=5e-4)
    config_path.write_text(json.dumps(config))
    with pytest.warns(TranslatedRecipe, match=r"config.json': mlp_aae.lr moved to train.phases.reconstruction.lr"):
        model = genzoo.load(new_run)
    assert "lr" not in model.config["model"]
    assert model.extra_config["train"]["phases"]["discriminator"] == {"lr": 5e-4}
    assert_same_tensors(model.state_dict(), load_tensors(new_run / "model" / "model.safetensors"))


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
    with pytest.raises(GenzooError, match="missing or corrupt") as raised:
        train(recipe)
    # keep_checkpoints left no earlier step-* folder: the message says how to start over, and that works
    checkpoints, message = tmp_path / "runs" / "tiny" / "checkpoints", str(raised.value)
    assert "no earlier checkpoint" in message and f"delete '{checkpoints}' to train from step 0" in message
    assert "earlier step-* folder" not in message
    shutil.rmtree(checkpoints)
    train(recipe, "train.steps=20")
    assert Checkpoints(tmp_path / "runs" / "tiny").latest().name == "step-0000020"


def test_a_corrupt_checkpoint_names_the_earlier_one_to_resume_from(tmp_path):
    recipe = write_recipe(tmp_path)
    train(recipe)  # keep_checkpoints 2: step-0000020 and step-0000040
    checkpoints = tmp_path / "runs" / "tiny" / "checkpoints"
    weights = checkpoints / "step-0000040" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(GenzooError) as raised:
        train(recipe, "train.steps=60")
    message = str(raised.value)
    assert "missing or corrupt" in message and "set checkpoints/latest to step-0000020" in message
    assert "earlier step-* folder" not in message
    shutil.rmtree(checkpoints / "step-0000040")  # the advice, followed: the run resumes from step 20
    (checkpoints / "latest").write_text("step-0000020\n")
    train(recipe, "train.steps=60")
    assert Checkpoints(tmp_path / "runs" / "tiny").latest().name == "step-0000060"


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
    assert_each_phase_changes_only_its_modules(trainer, torch.rand(50, 1, 8, 8))


def test_decoupled_weight_decay_builds_adamw_without_the_newer_keyword(tmp_path, monkeypatch):
    """decoupled_weight_decay picks the class (AdamW, else Adam), since older torch refuses
    Adam(decoupled_weight_decay=...); a step, which applies its phase's settings to the groups, keeps the decay."""
    adam, adamw, made = torch.optim.Adam, torch.optim.AdamW, []

    def spy(cls):
        return lambda *args, **kw: made.append((cls.__name__, sorted(kw))) or cls(*args, **kw)

    monkeypatch.setattr(torch.optim, "Adam", spy(adam))
    monkeypatch.setattr(torch.optim, "AdamW", spy(adamw))
    decay = ["train.phases.reconstruction.decoupled_weight_decay=true", "train.phases.reconstruction.weight_decay=0.1"]
    trainer = Trainer(
        load_recipe(write_recipe(tmp_path), [*decay, "train.phases.generator.decoupled_weight_decay=false"])
    )
    trainer._setup()
    raw = {key: opt.optimizer for key, opt in trainer.optimizers.items()}  # unwrapped from Accelerate's wrapper
    assert {key: type(opt) for key, opt in raw.items()} == {
        "reconstruction": adamw,
        "discriminator": adam,
        "generator": adam,
    }
    assert sorted(name for name, _ in made) == ["Adam", "Adam", "AdamW"]
    assert all(kw == ["betas", "lr", "weight_decay"] for _, kw in made), made
    assert raw["reconstruction"].param_groups[0]["weight_decay"] == 0.1
    trainer._train_step(torch.rand(50, 1, 8, 8))
    assert [raw[k].param_groups[0]["decoupled_weight_decay"] for k in raw] == [True, False, False]


def test_phases_sharing_an_optimiser_must_agree_on_decoupled_weight_decay(tmp_path):
    recipe = write_recipe(tmp_path, model={"name": "mlp_alae", "latent_dim": 4, "hidden": 32})
    trainer = Trainer(load_recipe(recipe, ["train.phases.generator.decoupled_weight_decay=true"]))
    with pytest.raises(GenzooError, match="share the optimiser 'alae' but not decoupled_weight_decay") as raised:
        trainer._setup()
    assert "set train.phases.generator.decoupled_weight_decay=false" in str(raised.value)
    every = [f"train.phases.{phase.name}.decoupled_weight_decay=true" for phase in trainer.phases]
    trainer = Trainer(load_recipe(recipe, every))
    trainer._setup()
    assert [type(opt.optimizer) for opt in trainer.optimizers.values()] == [torch.optim.AdamW]


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


def test_a_prior_swap_keeps_the_recipes_phase_settings_and_typos_are_refused(tmp_path):
    """TINY sets train.phases for the AAE's discriminator and generator: with the mbrce prior those phases are
    unused (reported, not refused) and the `prior` phase trains; a name no prior gives the model is refused."""
    recipe = write_recipe(tmp_path, prior={"name": "mbrce", "target": "gaussian", "std": 2.0})
    said = []
    trainer = Trainer(load_recipe(recipe, ["train.phases.discriminator.lr=3e-4", "train.phases.prior.lr=7e-4"]))
    trainer.console.say = said.append
    trainer._setup()
    assert [p.name for p in trainer.phases] == ["reconstruction", "prior"] and trainer.hyper["prior"]["lr"] == 7e-4
    assert any("train.phases.discriminator" in line and "unused" in line for line in said), said
    with pytest.raises(GenzooError, match="'train.phases.discriminatr' names no phase of mlp_aae"):
        Trainer(load_recipe(recipe, ["train.phases.discriminatr.lr=3e-4"]))._setup()
