"""The phases' optimisers. Each phase trains with the recipe's `train.phases.<phase>` where it sets a value, else
the Phase's default (the architecture's paper values): `phase_settings` is the one place the two meet, for the
trainer and for the study's record. One Adam (AdamW for decoupled weight decay) per optimiser key."""

from __future__ import annotations

import torch

from genzoo.core.errors import GenzooError
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


def check_phase_names(phases, overrides: dict, model, model_name: str) -> list[str]:
    """Every key under train.phases names a phase of the model (a typo would silently change nothing), or one it
    trains with another kind of prior (kept, so that a prior swap keeps the recipe's other settings): those are
    returned, unused, for the run to report."""
    used = {p.name for p in phases}
    unused = sorted(set(overrides) - used)
    unknown = [name for name in unused if name not in model.phases_with_other_priors]
    if unknown:
        possible = [p.name for p in phases] + [p for p in model.phases_with_other_priors if p not in used]
        raise GenzooError(
            f"recipe key 'train.phases.{unknown[0]}' names no phase of {model_name}",
            f"its phases are: {', '.join(possible)}",
        )
    return unused


def build_optimizers(model, phases, overrides: dict, prepare, fused: bool = False) -> tuple[dict, dict, dict]:
    """(hyper, params, optimizers): per phase the {lr, betas, weight_decay} each of its steps gives its optimiser's
    groups and the parameters it updates; per optimiser key the optimiser, passed through `prepare` (Accelerate's).

    One Adam per Phase.optimizer name (default: the phase's own), over the modules of every phase naming it, so
    phases sharing one (ALAE) share the moments of the modules they have in common. A phase zeroes all of its
    optimiser's gradients and only its own parameters require gradients, so its step moves nothing else.
    `fused`: torch's fused kernel (train.fused_optimizer), else torch's default implementation."""
    hyper, params, decoupled, modules_of = {}, {}, {}, {}
    for phase in phases:
        settings = phase_settings(phase, overrides.get(phase.name))
        decoupled[phase.name] = settings.pop("decoupled_weight_decay")
        hyper[phase.name] = settings
        params[phase.name] = [p for m in phase.modules for p in getattr(model, m).parameters()]
        names = modules_of.setdefault(phase.optimizer or phase.name, [])
        names += [m for m in phase.modules if m not in names]
    optimizers = {}
    for key, names in modules_of.items():
        sharing = [p.name for p in phases if (p.optimizer or p.name) == key]
        owned = [p for m in names for p in getattr(model, m).parameters()]
        optimizers[key] = prepare(_adam(owned, hyper[sharing[0]], _one_decoupling(key, sharing, decoupled), fused))
    return hyper, params, optimizers


def _adam(params, hyper: dict, decoupled: bool, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW for decoupled weight decay, else Adam: not Adam(decoupled_weight_decay=True), an argument older torch
    lacks (new in 2.7). The same updates, bit for bit, on torch 2.13."""
    return (torch.optim.AdamW if decoupled else torch.optim.Adam)(
        params, **hyper, **({"fused": True} if fused else {})
    )


def _one_decoupling(key: str, phases: list[str], decoupled: dict) -> bool:
    """Phases sharing an optimiser share its class: Adam or AdamW, not one per phase."""
    differ = next((p for p in phases if decoupled[p] != decoupled[phases[0]]), None)
    if differ is not None:
        raise GenzooError(
            f"phases '{phases[0]}' and '{differ}' share the optimiser '{key}' but not decoupled_weight_decay",
            f"set train.phases.{differ}.decoupled_weight_decay={str(decoupled[phases[0]]).lower()}",
        )
    return decoupled[phases[0]]
