"""The phases' optimiser settings: the recipe's `train.phases.<phase>` where it sets one, else the Phase's default
(the architecture's paper values). This is the one place the two meet: the trainer and the study's record use it."""

from __future__ import annotations

from genzoo.core.recipe import PhaseOptions


def phase_settings(phase, override: PhaseOptions | None) -> dict:
    """{lr, betas, weight_decay, decoupled_weight_decay} that `phase` trains with under `override` (the recipe's
    train.phases.<name>, or None)."""
    over = override or PhaseOptions()
    return {
        "lr": phase.lr if over.lr is None else over.lr,
        "betas": phase.betas if over.betas is None else tuple(over.betas),
        "weight_decay": phase.weight_decay if over.weight_decay is None else over.weight_decay,
        "decoupled_weight_decay": (
            phase.decoupled_weight_decay if over.decoupled_weight_decay is None else over.decoupled_weight_decay
        ),
    }
