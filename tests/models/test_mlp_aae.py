"""The MLP AAE's phase layouts (the paper's separate phases and the folded step of PyTorch-GAN and pythae) and the
trainer's fused Adam option."""

import pytest
import torch

import genzoo
from genzoo.core.recipe import load_recipe
from genzoo.datasets.digits import digits
from genzoo.train.trainer import Trainer
from tests.helpers.phases import assert_each_phase_changes_only_its_modules
from tests.helpers.recipes import TINY, TINY_MBRCE_PHASES, write_recipe

MBRCE = {"name": "mbrce", "target": "gaussian", "std": 2.0, "alpha": 0.5, "sigma": "median", "measure": "pooled"}
PHASES = {
    ("gaussian", "separate"): [
        ("reconstruction", {"encoder", "decoder"}),
        ("discriminator", {"discriminator"}),
        ("generator", {"encoder"}),
    ],
    ("gaussian", "folded"): [("autoencoder", {"encoder", "decoder"}), ("discriminator", {"discriminator"})],
    ("mbrce", "separate"): [("reconstruction", {"encoder", "decoder"}), ("prior", {"encoder"})],
    ("mbrce", "folded"): [("autoencoder", {"encoder", "decoder"})],
}


def trainer_for(tmp_path, prior="gaussian", step="separate", *overrides, **model):
    sections = {"prior": MBRCE, "train": {**TINY["train"], "phases": TINY_MBRCE_PHASES}} if prior == "mbrce" else {}
    recipe = write_recipe(tmp_path, model={**TINY["model"], "regularization_step": step, **model}, **sections)
    return Trainer(load_recipe(recipe, list(overrides)))


@pytest.mark.parametrize("prior,step", list(PHASES))
def test_phases_change_only_their_own_parameters(tmp_path, prior, step):
    """Folded, the recipe's `reconstruction` settings are kept (reported unused), not refused as a typo."""
    trainer = trainer_for(tmp_path, prior, step)
    trainer._setup()
    assert [(p.name, set(p.modules)) for p in trainer.phases] == PHASES[prior, step]
    assert_each_phase_changes_only_its_modules(trainer, torch.rand(50, 1, 8, 8))


def test_the_folded_step_sums_both_gradients_through_one_encoding(tmp_path):
    """Folded, the encoder's gradient is the reconstruction's plus prior_weight x the generator's, from the same
    codes (same noise; no dropout, whose masks would be drawn in another order): what the separate phases would
    give in two steps, in one."""
    trainer = trainer_for(tmp_path, "gaussian", "folded", prior_weight=0.25, dropout=0.0)
    trainer._setup()
    model, x = trainer.model, torch.rand(50, 1, 8, 8)

    def encoder_grad(loss_of):
        model.zero_grad()
        torch.manual_seed(3)
        loss_of(x).backward()
        return torch.cat([p.grad.flatten() for p in model.encoder.parameters()])

    folded = encoder_grad(lambda x: model.autoencoder_loss(x)[0])
    recon = encoder_grad(lambda x: model.reconstruction_loss(x)[0])
    generator = encoder_grad(lambda x: model.generator_loss(x)[0])
    torch.testing.assert_close(folded, recon + 0.25 * generator, rtol=1e-5, atol=1e-7)
    assert generator.abs().max() > 1e-3 * recon.abs().max()  # the regulariser's share is not negligible


def test_folded_regulariser_pulls_the_codes_to_the_prior(tmp_path):
    """Trained folded on digits with the MBRCE prior (target N(0, 2^2)), the test codes' divergence from the target
    ends well below that of the same training with prior_weight 0 (a plain autoencoder, whose codes wander):
    measured 0.12 against 0.47, mean offsets 0.25 against 1.31."""
    divergence, offset = {}, {}
    for weight in (1.0, 0.0):
        model = {
            **TINY["model"],
            "regularization_step": "folded",
            "prior_weight": weight,
            "posterior": "deterministic",
        }
        train = {**TINY["train"], "steps": 300, "phases": {"autoencoder": {"lr": 1e-3}}}
        run = Trainer(load_recipe(write_recipe(tmp_path, f"w{weight}", model=model, prior=MBRCE, train=train))).fit()
        trained = genzoo.load(run).eval()
        with torch.no_grad():
            codes = trained.encode(digits("test").images.float() / 255)
            divergence[weight] = trained.prior.matching_loss(codes).item()
        offset[weight] = codes.mean(0).abs().mean().item()
    assert divergence[1.0] < 0.5 * divergence[0.0] and offset[1.0] < 0.5 * offset[0.0], (divergence, offset)


def test_fused_adam_builds_fused_optimisers_that_train_the_same_to_rounding(tmp_path):
    """train.fused_optimizer: every optimiser is torch's fused Adam, and a few steps land where the default's do up
    to rounding (the kernel rounds differently in the last bit, so not bit for bit)."""
    params = {}
    for fused in (False, True):
        (tmp_path / str(fused)).mkdir()
        trainer = trainer_for(tmp_path / str(fused), "gaussian", "separate", f"train.fused_optimizer={fused}")
        trainer._setup()
        raw = [opt.optimizer for opt in trainer.optimizers.values()]
        assert [bool(opt.defaults.get("fused")) for opt in raw] == [fused] * 3
        torch.manual_seed(0)
        x = torch.rand(50, 1, 8, 8)
        for _ in range(5):
            trainer._train_step(x)
        params[fused] = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert (params[True] - params[False]).abs().max().item() < 1e-4


@pytest.mark.parametrize("prior", ["gaussian", "mbrce"])
def test_old_style_learning_rates_reach_the_folded_phases(prior):
    """A model-section `lr` / `regularization_lr` (before train.phases) moves to the phases the folded schedule
    trains: the autoencoder's and the discriminator's; a folded MBRCE-AAE has none for `regularization_lr`."""
    from genzoo.core.recipe import translate_moved

    model = {**TINY["model"], "regularization_step": "folded", "lr": 1e-3, "regularization_lr": 5e-4}
    raw = {**TINY, "model": model, "prior": MBRCE if prior == "mbrce" else TINY["prior"], "train": {"steps": 1}}
    moved = translate_moved(raw, notify=False)
    phases = moved["train"]["phases"]
    if prior == "gaussian":
        assert phases == {"autoencoder": {"lr": 1e-3}, "discriminator": {"lr": 5e-4}}
        assert "lr" not in moved["model"] and "regularization_lr" not in moved["model"]
    else:
        assert phases == {"autoencoder": {"lr": 1e-3}} and moved["model"]["regularization_lr"] == 5e-4
