"""Progressive-growing schedule (genzoo/train/growth.py) and evaluation during training (train.eval)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.recipe import GrowthSpec, load_recipe
from genzoo.train.growth import GrowthSchedule
from tests.helpers.cli import launch, run_cli
from tests.helpers.recipes import ROOT, write_recipe


def schedule(max_res=16, batch=8, size=100, world=1, **spec):
    return GrowthSchedule(GrowthSpec(**spec), max_res, batch, size, world)


def test_levels_double_to_the_data_resolution_with_per_level_batches():
    s = schedule(max_res=32, images_per_level=100, batch_size={"4": 20, "8": 16, "32": 4})
    assert [lv.resolution for lv in s.levels] == [4, 8, 16, 32]
    assert [lv.batch_size for lv in s.levels] == [20, 16, 8, 4]  # 16 falls back to train.batch_size
    # ceil(100 / batch) steps per level, the last one open-ended
    assert [(lv.first_step, lv.end_step) for lv in s.levels] == [(0, 5), (5, 12), (12, 25), (25, None)]
    assert [s.level_at(step).resolution for step in (0, 4, 5, 11, 12, 24, 25, 10_000)] == [4, 4, 8, 8, 16, 16, 32, 32]


def test_tables_for_a_larger_top_resolution_serve_a_smaller_run():
    """A recipe's 4..256 tables work on smaller data (data.size=16): keys above the top level are dropped."""
    s = schedule(
        max_res=16,
        images_per_level=100,
        batch_size={"4": 20, "8": 16, "16": 12, "32": 6, "256": 2},
        lr={"16": 0.002, "64": 0.003},
    )
    assert [lv.batch_size for lv in s.levels] == [20, 16, 12] and s.lr == {16: 0.002}
    with pytest.raises(GenzooError, match=r"train.growth.lr given for resolution 24"):
        schedule(images_per_level=10, lr={"24": 0.1})


def test_batch_size_per_number_of_processes_overrides_the_default():
    spec = dict(images_per_level=64, batch_size={"4": 32}, batch_size_by_processes={"2": {"4": 64, "8": 16}})
    assert [lv.batch_size for lv in schedule(world=1, **spec).levels] == [32, 8, 8]
    assert [lv.batch_size for lv in schedule(world=2, **spec).levels] == [64, 16, 8]


def test_blend_follows_alae_sine_curve_over_the_first_half_of_each_level():
    s = schedule(images_per_level=80, batch=8, transition=0.5)  # 10 steps per level, 5 of them blending
    assert [s.blend(step) for step in range(0, 10)] == [1.0] * 10  # the first level has nothing to blend in
    expected = [math.sin(t * math.pi - math.pi / 2) / 2 + 0.5 for t in (0, 0.2, 0.4, 0.6, 0.8)]
    assert [s.blend(step) for step in range(10, 15)] == pytest.approx(expected, abs=1e-12)
    assert s.blend(10) == 0.0 and s.blend(15) == 1.0 and s.blend(19) == 1.0
    assert s.blend(20) == 0.0  # next level
    assert all(a < b for a, b in zip(expected, expected[1:]))


def test_epochs_per_level_and_total_images():
    s = schedule(size=100, batch=10, epochs_per_level=2)  # 200 images = 20 steps per level
    assert [(lv.first_step, lv.end_step) for lv in s.levels] == [(0, 20), (20, 40), (40, None)]
    assert s.steps_for_images(7 * 100) == 70  # train.epochs 7: two levels of 2 epochs, then 3 at 16
    assert s.images_before(45) == 450


@pytest.mark.parametrize(
    "spec,message",
    [
        (dict(start_resolution=3, images_per_level=10), "does not reach"),
        (dict(), "exactly one of"),
        (dict(images_per_level=10, epochs_per_level=1), "exactly one of"),
        (dict(images_per_level=10, batch_size={"12": 4}), "not a level"),
        (dict(images_per_level=10, transition=1.5), "transition"),
    ],
)
def test_bad_growth_settings_are_named(spec, message):
    with pytest.raises(GenzooError, match=message):
        schedule(**spec)


def test_growth_on_a_model_that_cannot_grow_is_one_clear_error(tmp_path):
    recipe = write_recipe(tmp_path, train={"growth": {"images_per_level": 100}})
    proc = run_cli("train", recipe, check=False)
    assert proc.returncode == 1
    assert "does not grow progressively" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_during_training_keeps_the_best_model(tmp_path):
    """train.eval measures the recipe's metric every few steps on the held-out split and keeps the best model."""
    import genzoo
    from genzoo.metrics.evaluate import evaluate
    from genzoo.train.trainer import Trainer

    path = write_recipe(
        tmp_path,
        train={
            "steps": 60,
            "checkpoint_every": 60,
            "sample_every": 60,
            "eval": {"metric": "reconstruction", "value": "mse", "every_steps": 20},
        },
    )
    run = Trainer(load_recipe(path)).fit()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/mse" in r]
    assert [r["step"] for r in evals] == [20, 40, 60]
    best = min(evals, key=lambda r: r["eval/mse"])
    kept = genzoo.load(run / "model-best")
    assert kept.extra_config["step"] == best["step"]
    assert kept.extra_config["best"]["mse"] == pytest.approx(best["eval/mse"])
    # the kept model really is that good on that split
    assert evaluate(kept, ["reconstruction"])["reconstruction"]["mse"] == pytest.approx(best["eval/mse"], rel=1e-5)


def test_unknown_eval_metric_fails_at_validation(tmp_path):
    recipe = write_recipe(tmp_path, train={"eval": {"metric": "fidd"}})
    proc = run_cli("train", recipe, check=False)
    assert proc.returncode == 1 and "fidd" in proc.stderr and "Traceback" not in proc.stderr


# -- StyleALAE growing under the trainer ---------------------------------------------------------------------------
STYLE = {"name": "style_alae", "latent_dim": 16, "mapping_layers": 2, "start_filters": 8, "max_filters": 16}
GROWING = {
    "data": {"name": "digits", "size": 16},
    "model": STYLE,
    "prior": {"name": "gaussian"},
    "train": {
        "batch_size": 16,
        "steps": 26,
        "log_every": 1,
        "sample_every": 1000,
        "checkpoint_every": 1000,
        # 160 images = 10 steps of 16 per level; the first 5 steps of a level blend its new block in
        "growth": {"start_resolution": 4, "images_per_level": 160, "transition": 0.5},
    },
}


def log_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def expected_blends():
    """The blend each of the 26 steps uses: 1 at level 4, ALAE's sine ramp over 5 steps at 8 and at 16."""
    ramp = [math.sin(k / 5 * math.pi - math.pi / 2) / 2 + 0.5 for k in range(5)] + [1.0] * 5
    return [1.0] * 10 + ramp + ramp[:6]


def test_style_alae_grows_4_8_16_with_the_blend_as_scheduled(tmp_path):
    import genzoo
    from genzoo.train.trainer import Trainer

    growth = {**GROWING["train"]["growth"], "lr": {"8": 0.001, "16": 0.0005}}  # learning rate per level
    trainer = Trainer(
        load_recipe(write_recipe(tmp_path, "grow", base=GROWING, train={**GROWING["train"], "growth": growth}))
    )
    run = trainer.fit()
    assert [g["lr"] for g in trainer.optimizers["alae"].param_groups] == [0.0005]
    log = [r for r in log_of(run) if "resolution" in r]
    assert [r["step"] for r in log] == list(range(1, 27))
    assert [r["resolution"] for r in log] == [4] * 10 + [8] * 10 + [16] * 6
    assert [r["blend"] for r in log] == pytest.approx(expected_blends(), abs=1e-6)
    assert all(math.isfinite(v) for r in log for k, v in r.items() if k.startswith("loss/"))
    # Adam restarted at 16: the encoder's state counts 2 updates (discriminator + reciprocity) per step since then,
    # 6 steps (12), or 5 (10) for the 8x8 from_rgb that only takes part while the new block blends in
    state = trainer.optimizers["alae"].state
    assert {float(state[p]["step"]) for p in trainer.model.encoder.parameters() if p in state} == {10.0, 12.0}
    model = genzoo.load(run)
    assert model.sample(3).shape == (3, 1, 16, 16)
    assert (run / "samples" / "step-0000026.png").is_file()


def test_a_run_stopped_mid_transition_resumes_at_the_same_level_and_blend(tmp_path):
    """Stop at step 13 (level 8, blend 0.35), resume to 26: same log and bit-identical weights as one run."""
    from genzoo.core.io import load_tensors
    from genzoo.train.trainer import Trainer

    whole = write_recipe(tmp_path, "whole", base=GROWING)
    cut = write_recipe(tmp_path, "cut", base=GROWING)
    Trainer(load_recipe(whole)).fit()
    Trainer(load_recipe(cut, ["train.steps=13"])).fit()
    resumed = Trainer(load_recipe(cut))
    resumed.fit()
    assert resumed.level.resolution == 16
    a, b = (log_of(tmp_path / "runs" / n) for n in ("whole", "cut"))
    drop = ("images_per_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [
        {k: v for k, v in r.items() if k not in drop} for r in b
    ]
    wa = load_tensors(tmp_path / "runs" / "whole" / "model" / "model.safetensors")
    wb = load_tensors(tmp_path / "runs" / "cut" / "model" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_two_processes_grow_across_a_resolution_switch(tmp_path):
    """A real 2-process accelerate launch through the 4 -> 8 switch, checkpointing on both sides of it; the
    trainer checks at every checkpoint that both processes hold the same weights."""
    import os

    recipe = write_recipe(
        tmp_path,
        "two",
        base=GROWING,
        data={"name": "digits", "size": 8},
        train={**GROWING["train"], "steps": 14, "checkpoint_every": 5, "log_every": 1},
    )
    launch(recipe, 2, {**os.environ, "OMP_NUM_THREADS": "1"})
    log = [r for r in log_of(tmp_path / "runs" / "two") if "resolution" in r]
    assert [r["resolution"] for r in log] == [4] * 10 + [8] * 4
    assert [r["blend"] for r in log] == pytest.approx(expected_blends()[:14], abs=1e-6)
    ckpt = tmp_path / "runs" / "two" / "checkpoints" / "step-0000014"
    assert (ckpt / "rng-rank0.safetensors").is_file() and (ckpt / "rng-rank1.safetensors").is_file()


def smoke_hint(recipe: str, kind: str) -> list[str]:
    """The overrides a shipped recipe's comment gives for a CPU smoke run (`# smoke-data:` / `# smoke-train:`)."""
    import shlex

    lines = (ROOT / "recipes" / f"{recipe}.yaml").read_text().splitlines()
    return [arg for line in lines if line.startswith(f"# {kind}:") for arg in shlex.split(line.split(":", 1)[1])]


def test_mbrce_celeba256_recipe_prepares_and_trains_on_a_tiny_folder(tmp_path):
    """The flagship recipe as shipped, shrunk by the smoke-run overrides its own comment gives (so the hint works):
    `genzoo prepare` builds the store from a folder of odd images, then `genzoo train` grows 4 -> 8 -> 16 with the
    MBRCE prior and measures FID at the top level on the held-out split, keeping model-best/."""
    pytest.importorskip(
        "cleanfid", reason="clean-fid is not installed (README: pip install --no-deps clean-fid==0.1.35)"
    )
    import numpy as np
    from PIL import Image

    source = tmp_path / "faces"
    source.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):  # numbered, non-square, as the MBRCE-AAE project's layout; a few grey and PNG ones
        array = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
        image = Image.fromarray(array).convert("L") if i % 7 == 0 else Image.fromarray(array)
        image.save(source / (f"{i + 1:05d}.png" if i % 5 == 0 else f"{i + 1:05d}.jpg"))
    store = tmp_path / "store"
    data = [f"data.root={store}", f"data.source={source}", *smoke_hint("mbrce_celeba256", "smoke-data")]
    run_cli("prepare", "recipes/mbrce_celeba256.yaml", *data)
    small = [*smoke_hint("mbrce_celeba256", "smoke-train"), f"output_dir={tmp_path / 'runs'}"]
    run_cli("train", "recipes/mbrce_celeba256.yaml", *data, *small)
    run = tmp_path / "runs" / "mbrce_celeba256"
    log = log_of(run)
    assert [r["resolution"] for r in log if "resolution" in r] == [4, 4, 8, 8, 16, 16, 16, 16]
    assert {"loss/push", "loss/pull", "loss/reciprocity"} <= set(log[0])
    evals = [r for r in log if "eval/fid" in r]
    assert [r["step"] for r in evals] == [8] and math.isfinite(evals[0]["eval/fid"]) and evals[0]["eval/fid"] > 0
    best = json.loads((run / "model-best" / "config.json").read_text())
    assert best["data"]["name"] == "prepared"
    assert (run / "samples" / "step-0000008.png").is_file()
