from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from annotated_types import Ge

from genzoo.core.options import Fraction, PositiveInt
from genzoo.core.registry import MODELS
from genzoo.models.base import GenerativeAutoencoder, Phase
from genzoo.models.blocks import mlp
from genzoo.priors.base import Prior


@MODELS.register("mlp_aae")
class MLPAAE(GenerativeAutoencoder):
    """Adversarial autoencoder with MLP encoder, decoder and code discriminator (Makhzani et al. 2015).

    Phases per batch: reconstruction (encoder + decoder, BCE), discriminator (prior samples vs codes) and
    generator (encoder fools the discriminator). A prior that matches codes itself (MBRCE) replaces the last two
    with a single `prior` phase and the discriminator is not built. Adam, betas (0.5, 0.999), lr 2e-4 for the
    reconstruction and 1e-4 for the regularisation phases (the paper's; a recipe sets others in train.phases).

    `regularization_step: folded` is the folding of PyTorch-GAN's AAE and pythae's Adversarial_AE: one `autoencoder`
    step of encoder and decoder on reconstruction + prior_weight x (the generator loss, or the prior's matching
    loss), then the discriminator's step: two backward passes per batch instead of three (one with MBRCE). The
    weights differ between them (PyTorch-GAN 0.999 / 0.001, so prior_weight ~0.001; pythae 0.5 / 0.5, so 1).
    The paper's separate phases stay the default: the folded update is another algorithm, not a faster same one.
    Unlike both, the discriminator step encodes the batch again (the updated encoder, fresh noise) rather than
    reusing the autoencoder step's codes: phases share no state.
    """

    # the phases of the other priors, and of the other regularization_step (train.phases may name them)
    phases_with_other_priors = ("discriminator", "generator", "prior", "reconstruction", "autoencoder")

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        prior: Prior,
        latent_dim: PositiveInt = 8,
        hidden: PositiveInt = 1200,
        layers: PositiveInt = 2,
        dropout: Fraction = 0.2,
        activation: Literal["relu", "leaky_relu"] = "relu",
        posterior: Literal["deterministic", "gaussian"] = "gaussian",
        prior_weight: float = 1.0,
        regularization_step: Literal["separate", "folded"] = "separate",
    ):
        super().__init__(image_shape)
        pixels = math.prod(image_shape)
        self.prior = prior
        self.regularization_step = regularization_step
        self.posterior = posterior
        self.prior_weight = prior_weight
        out = 2 * latent_dim if posterior == "gaussian" else latent_dim
        self.encoder = mlp([pixels, *[hidden] * layers, out], activation, dropout)
        self.decoder = mlp([latent_dim, *[hidden] * layers, pixels], activation, dropout)
        self.discriminator = (
            None if prior.matches_codes else mlp([latent_dim, *[hidden] * layers, 1], activation, dropout)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x.flatten(1))
        if self.posterior == "deterministic":
            return h
        mean, log_var = h.chunk(2, dim=1)
        if not self.training:
            return mean
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.image_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    # -- phases ---------------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        betas = (0.5, 0.999)
        if self.regularization_step == "folded":
            folded = Phase("autoencoder", ("encoder", "decoder"), self.autoencoder_loss, 2e-4, betas)
            if self.prior.matches_codes:
                return [folded]
            return [folded, Phase("discriminator", ("discriminator",), self.discriminator_loss, 1e-4, betas)]
        recon = Phase("reconstruction", ("encoder", "decoder"), self.reconstruction_loss, 2e-4, betas)
        if self.prior.matches_codes:
            return [recon, Phase("prior", ("encoder",), self.prior_loss, 1e-4, betas)]
        return [
            recon,
            Phase("discriminator", ("discriminator",), self.discriminator_loss, 1e-4, betas),
            Phase("generator", ("encoder",), self.generator_loss, 1e-4, betas),
        ]

    @classmethod
    def moved_options(cls, options: dict, prior) -> dict:
        """`lr` and `regularization_lr` were options until train.phases held every optimiser setting (folded: the
        autoencoder's and the discriminator's; a folded MBRCE-AAE has no regularisation phase to take one)."""
        matches = prior is not None and prior.matches_codes
        if options.get("regularization_step") == "folded":
            return {
                "lr": ("lr", ("autoencoder",)),
                **({} if matches else {"regularization_lr": ("lr", ("discriminator",))}),
            }
        regularization = ("prior",) if matches else ("discriminator", "generator")
        return {"lr": ("lr", ("reconstruction",)), "regularization_lr": ("lr", regularization)}

    def reconstruction_loss(self, x):
        loss = F.binary_cross_entropy_with_logits(self.decode_logits(self.encode(x)), x)
        return loss, {"reconstruction": loss.detach()}

    def autoencoder_loss(self, x):
        """The folded step: reconstruction + prior_weight x the regulariser, through one encoding."""
        z = self.encode(x)
        recon = F.binary_cross_entropy_with_logits(self.decode_logits(z), x)
        if self.prior.matches_codes:
            name, regularizer = "prior", self.prior.matching_loss(z)
        else:
            fake = self.discriminator(z)
            name, regularizer = "generator", F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        return recon + self.prior_weight * regularizer, {"reconstruction": recon.detach(), name: regularizer.detach()}

    def discriminator_loss(self, x):
        real = self.discriminator(self.prior.sample(x.shape[0]))
        fake = self.discriminator(self.encode(x).detach())
        loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        return loss, {"discriminator": loss.detach()}

    def generator_loss(self, x):
        fake = self.discriminator(self.encode(x))
        loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        return loss, {"generator": loss.detach()}

    def prior_loss(self, x):
        loss = self.prior.matching_loss(self.encode(x))
        return self.prior_weight * loss, {"prior": loss.detach()}


@MODELS.register("ae")
class MLPAE(MLPAAE):
    """Deterministic autoencoder on the MLP AAE's networks with no matching (no discriminator, no prior loss).

    New codes come from a sampler fitted after training (`genzoo fit-sampler`): "AE + GMM" of the RAE paper (Ghosh
    et al. 2020). With `code_l2` > 0 and `decoder_l2` > 0 it is their RAE-L2: reconstruction + code_l2 * |z|^2 / 2
    + decoder_l2 * |decoder weights|^2. The prior only serves `sample` without a fitted sampler.
    """

    phases_with_other_priors = ()

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        prior: Prior,
        latent_dim: PositiveInt = 8,
        hidden: PositiveInt = 1200,
        layers: PositiveInt = 2,
        dropout: Fraction = 0.2,
        activation: Literal["relu", "leaky_relu"] = "relu",
        code_l2: Annotated[float, Ge(0)] = 0.0,
        decoder_l2: Annotated[float, Ge(0)] = 0.0,
    ):
        super().__init__(image_shape, prior, latent_dim, hidden, layers, dropout, activation, "deterministic")
        self.discriminator = None
        self.code_l2, self.decoder_l2 = code_l2, decoder_l2

    def phases(self) -> list[Phase]:
        return [Phase("reconstruction", ("encoder", "decoder"), self.reconstruction_loss, 2e-4, (0.5, 0.999))]

    @classmethod
    def moved_options(cls, options: dict, prior) -> dict:
        return {"lr": ("lr", ("reconstruction",))}

    def reconstruction_loss(self, x):
        z = self.encode(x)
        loss = F.binary_cross_entropy_with_logits(self.decode_logits(z), x)
        logs = {"reconstruction": loss.detach()}
        if self.code_l2:
            codes = 0.5 * z.square().sum(1).mean()
            loss, logs["code_l2"] = loss + self.code_l2 * codes, codes.detach()
        if self.decoder_l2:
            weights = sum(p.square().sum() for name, p in self.decoder.named_parameters() if name.endswith("weight"))
            loss, logs["decoder_l2"] = loss + self.decoder_l2 * weights, weights.detach()
        return loss, logs
