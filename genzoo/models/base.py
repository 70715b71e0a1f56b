from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.recorded import record_init


@dataclass
class Phase:
    """One optimisation phase: the submodules it updates, its loss, and its optimiser defaults.

    `loss(x)` takes a batch of images in [0, 1] and returns (scalar loss, {name: detached scalar to log}).
    During a phase only the parameters of `modules` require gradients, so a phase can change nothing else.
    lr, betas, weight_decay and decoupled_weight_decay are the architecture's defaults (its paper's values), not
    constructor options: a recipe overrides them per phase under `train.phases.<name>`, their one place.
    Phases naming the same `optimizer` share Adam's moment estimates for the modules they have in common (ALAE's
    reciprocity step steps the same two optimisers as its adversarial steps); by default each phase has its own.
    """

    name: str
    modules: tuple[str, ...]
    loss: Callable[[torch.Tensor], tuple[torch.Tensor, dict]]
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False  # AdamW
    optimizer: str | None = None


class GenerativeAutoencoder(nn.Module):
    """Base of every architecture. Images are float tensors (N, C, H, W) in [0, 1].

    Subclasses implement `encode`, `decode` and `phases`; `sample` draws codes from the prior and decodes them.
    Optional abilities (progressive growing, fitting before export, style mixing, ...) are the Protocols of
    genzoo.core.capabilities: define their members and genzoo uses them.
    `prior_needs` names flags a prior must have to be paired with this architecture (checked at recipe
    validation), e.g. ("has_log_prob",).
    """

    prior_needs: tuple[str, ...] = ()
    # Phases the architecture trains with another kind of prior or option (the MLP AAE: discriminator and generator,
    # or `prior` with a prior that matches codes itself; `autoencoder` when folded): `train.phases` may name them,
    # so that swapping the prior in a recipe keeps its other settings; unused here, they are reported, not refused.
    phases_with_other_priors: tuple[str, ...] = ()
    # Set by create_model and by a load: config.json's sections (model, prior, image_shape), and what else the
    # file holds (step, weights sha256, genzoo version). A model built in Python gets `config` from its recorded
    # constructor options when first saved (modelfile.folder.model_config).
    config: dict | None = None
    extra_config: dict | None = None
    folder = None  # the local model folder it was loaded from (its fitted samplers live there), else None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        record_init(cls)  # constructor options kept, so a model built in Python can be saved (save_pretrained)

    # A fitted sampler (genzoo.samplers) to draw codes from instead of the prior; set with `use_sampler`. Kept out
    # of the module tree: its tensors live in its own folder, not in model.safetensors.
    code_sampler = None

    def __init__(self, image_shape: tuple[int, int, int]):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.prior = None  # the architecture's Prior, set by its constructor (a plugin model may have none)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def use_sampler(self, sampler) -> None:
        """Draw codes from a fitted sampler in `sample` (None: the prior again)."""
        self.__dict__["code_sampler"] = sampler  # not a submodule (see code_sampler)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.code_sampler is not None:
            return self.decode_fitted(n, generator)
        return self.decode(self.prior.sample(n, generator=generator))

    @torch.no_grad()
    def decode_fitted(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n codes drawn from the fitted sampler (codes in the space `decode` takes)."""
        anchor = next(self.parameters())
        return self.decode(self.code_sampler.sample(n, generator=generator).to(anchor.device, anchor.dtype))


def model_name(model) -> str:
    """The model's registered name (from its config), else its class name: for messages."""
    return ((model.config or {}).get("model") or {}).get("name") or type(model).__name__


def prior_codes(model, count: int, seed: int = 0) -> torch.Tensor:
    """`count` codes from the model's prior, in the space `decode` takes (through `code_from_prior` if any)."""
    from genzoo.core.capabilities import MapsPriorCodes, can

    prior = model.prior
    if prior is None:
        raise GenzooError("this model has no prior to draw codes from", "give images or dataset indices")
    z = prior.sample(count, generator=torch.Generator().manual_seed(seed))
    return model.code_from_prior(z) if can(model, MapsPriorCodes) else z
