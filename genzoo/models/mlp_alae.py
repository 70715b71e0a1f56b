"""Adversarial Latent Autoencoder, MLP form (Pidhorskyi et al., CVPR 2020; the `mnist_fc` configuration of
podgorskiy/ALAE, the ALAE paper), and its MBRCE variant without a discriminator (docs/mbrce.md, our design).

Networks (all layers equalised-lr linear layers, leaky ReLU 0.2, as ALAE's `lreq.Linear`):
  F  mapping    z -> w: pixel-norm(z), then `mapping_layers` layers of width latent_dim, each followed by leaky ReLU;
                lr multiplier `mapping_lr_mult` (0.1)
  G  generator  w -> image: latent_dim-hidden-hidden-pixels, linear output in ALAE's [-1, 1] pixel range
  E  encoder    image -> w: pixels-hidden-hidden-latent_dim, leaky ReLU after every layer (the last one too, as
                the reference EncoderFC)
  D  discriminator on w: `discriminator_layers` linear layers latent_dim-...-1, lr multiplier 0.1 and, as the
                reference MappingD, no nonlinearity between them (D∘E is the nonlinear discriminator)

Images are [0, 1] outside and 2x - 1 inside the networks (ALAE trains on [-1, 1]). `encode(x)` = E(x) = w,
`decode(w)` = G(w) mapped back to [0, 1], `sample(n)` = G(F(z)) with z from the injected prior,
`code_from_prior(z)` = F(z) (what `genzoo interpolate` uses to turn prior draws into codes).

ALAE's three steps per batch (Adam beta1 = 0, beta2 = 0.99, lr 0.002):
  1 (E, D): softplus(D(E(G(F(z))))) + softplus(-D(E(x))) + gamma/2 |grad_x D(E(x))|^2 (R1 on reals)
  2 (F, G): softplus(-D(E(G(F(z)))))                                 (E and D frozen)
  3 latent reciprocity: mean((E(G(F(z))) - F(z).detach())^2), stepping both of ALAE's optimisers (E+D's and F+G's;
    F gets the gradient through G(F(z)), so the reference code updates F too: reciprocity_updates_mapping)
ALAE has two Adam optimisers, E+D and F+G, and step 3 steps both, so its small reciprocity gradients are normalised
by the same second-moment estimates as steps 1 and 2. The phases name the trainer's shared optimiser ("alae"), which
reproduces exactly that (`reciprocity_step: separate`, the default). Measured on digits, 1000 steps, pixel MMD of
samples to the test set: 0.18 with shared state, 0.34 with `folded`, 0.69 with three independent Adam states (on
MNIST, 3 epochs: MMD^2 0.054 vs 0.146). The MBRCE variant measured the other way round (0.500 vs 0.052): its
recipe keeps `folded`, where the push step's reciprocity anchor and the reciprocity share act in the same step.
`reciprocity_step: folded` drops the third backward (about a third less compute per step) and folds step 3 into
the two adversarial phases, each optimiser getting its share of the reciprocity gradient in the same Adam step as
its adversarial gradient (first-order the same update):
  discriminator (E, D): step 1 + mean((E(G(F(z))) - F(z))^2) on the same generated images (trains E)
  generator     (F, G): step 2 + mean((E(G(F(z))) - F(z).detach())^2)  (trains G, and F unless
                        reciprocity_updates_mapping is false)

With a prior that matches codes itself (`mbrce`), D is not built and the adversary is the prior's divergence
(docs/mbrce.md, our design):
  push (E):    - divergence(E(G(F(z))), E(x)) + push_reciprocity * mean((E(G(F(z))) - F(z))^2)
  pull (F, G): divergence(E(G(F(z))), E(x)) + reciprocity as in `generator` (E frozen)
  (+ reciprocity (E, G) as its own phase with reciprocity_step: separate)
Scale control (`scale_control: normalize`): both code batches are divided by their pooled RMS spread (not
detached) before the divergence, which also takes its median bandwidth on those normalised codes. The loss is then
exactly invariant to scaling all codes, so its gradient has no component that inflates them; with the median
bandwidth alone (`none`) σ is detached, and the push gradient keeps a part that moves the two clouds apart at the
current σ, i.e. inflates the codes step after step. The reciprocity term in `push` anchors the codes of generated
images to w, so E cannot win by moving (or collapsing) those.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.capabilities import HasDivergence, can
from genzoo.core.errors import GenzooError
from genzoo.core.options import PositiveInt
from genzoo.core.registry import MODELS
from genzoo.models.base import GenerativeAutoencoder, Phase
from genzoo.models.blocks import PixelNorm, equal_mlp
from genzoo.priors.base import Prior


def alae_phase_names(prior, folded: bool = False) -> tuple[str, ...]:
    """The phases of ALAE with this prior class: push / pull with a prior that matches codes, else discriminator /
    generator; then reciprocity unless folded into those two."""
    adversary = ("push", "pull") if prior is not None and prior.matches_codes else ("discriminator", "generator")
    return adversary if folded else (*adversary, "reciprocity")


def check_alae_prior(prior: Prior, model: str) -> None:
    """A prior that matches codes itself stands in for D through its divergence(x, y) (push / pull)."""
    if prior.matches_codes and not can(prior, HasDivergence):
        raise GenzooError(
            f"prior '{type(prior).__name__}' matches codes but has no divergence(x, y) for {model}'s push/pull steps",
            "use prior mbrce or gaussian",
        )


@MODELS.register("mlp_alae")
class MLPALAE(GenerativeAutoencoder):
    """Adversarial latent autoencoder with MLPs (ALAE's MNIST configuration); MBRCE-ALAE with the mbrce prior.

    F maps prior codes z to w, G decodes w, E encodes images to w, D discriminates on w. Three phases per batch:
    discriminator (E+D, with R1), generator (F+G), reciprocity (E+G). With the mbrce prior: push, pull, reciprocity.
    """

    phases_with_other_priors = ("discriminator", "generator", "push", "pull")

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        prior: Prior,
        latent_dim: PositiveInt = 50,
        hidden: PositiveInt = 1024,
        layers: PositiveInt = 2,
        mapping_layers: PositiveInt = 6,
        mapping_lr_mult: float = 0.1,
        discriminator_layers: int = 3,
        discriminator_lr_mult: float = 0.1,
        r1_gamma: float = 10.0,
        reciprocity_step: Literal["separate", "folded"] = "separate",
        reciprocity_updates_mapping: bool = True,
        scale_control: Literal["normalize", "none"] = "normalize",
        push_reciprocity: float = 1.0,
    ):
        super().__init__(image_shape)
        if min(latent_dim, hidden, layers, mapping_layers, discriminator_layers) < 1:
            raise GenzooError(
                "model 'mlp_alae' needs latent_dim, hidden, layers, mapping_layers and discriminator_layers >= 1",
                "fix those model keys",
            )
        check_alae_prior(prior, "mlp_alae")
        pixels = math.prod(image_shape)
        self.prior = prior
        self.latent_dim = latent_dim
        self.r1_gamma = r1_gamma
        self.reciprocity_step, self.reciprocity_updates_mapping = reciprocity_step, reciprocity_updates_mapping
        self.scale_control, self.push_reciprocity = scale_control, push_reciprocity
        self.mapping = nn.Sequential(
            PixelNorm(), *equal_mlp([latent_dim] * (mapping_layers + 1), mapping_lr_mult, activate_last=True)
        )
        self.generator = equal_mlp([latent_dim, *[hidden] * layers, pixels])
        self.encoder = equal_mlp([pixels, *[hidden] * layers, latent_dim], activate_last=True)
        self.discriminator = (
            None
            if prior.matches_codes
            else equal_mlp([latent_dim] * discriminator_layers + [1], discriminator_lr_mult, activation=False)
        )

    # -- the model's interface ------------------------------------------------------------------------------
    @staticmethod
    def to_network(x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (N, C, H, W) -> flat network inputs in ALAE's [-1, 1]."""
        return x.flatten(1) * 2 - 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.to_network(x))

    def decode(self, w: torch.Tensor) -> torch.Tensor:
        return ((self.generator(w) + 1) / 2).clamp(0, 1).view(-1, *self.image_shape)

    def code_from_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Prior draw z -> code w = F(z), the space encode/decode work in."""
        return self.mapping(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.code_sampler is not None:
            return self.decode_fitted(n, generator)
        return self.decode(self.mapping(self.prior.sample(n, generator=generator)))

    # -- phases ---------------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        betas, lr = (0.0, 0.99), 0.002  # ALAE's Adam
        shared = dict(optimizer="alae")  # ALAE's two optimisers (E+D, F+G): every step shares their Adam moments
        recip = ("encoder", "generator", "mapping") if self.reciprocity_updates_mapping else ("encoder", "generator")
        if self.prior.matches_codes:
            adversary = [
                Phase("push", ("encoder",), self.push_loss, lr, betas, **shared),
                Phase("pull", ("mapping", "generator"), self.pull_loss, lr, betas, **shared),
            ]
        else:
            adversary = [
                Phase("discriminator", ("encoder", "discriminator"), self.discriminator_loss, lr, betas, **shared),
                Phase("generator", ("mapping", "generator"), self.generator_loss, lr, betas, **shared),
            ]
        if self.reciprocity_step == "folded":
            return adversary
        return adversary + [Phase("reciprocity", recip, self.reciprocity_loss, lr, betas, **shared)]

    @classmethod
    def moved_options(cls, options: dict, prior) -> dict:
        """`lr` was an option (of every phase) until train.phases held every optimiser setting."""
        return {"lr": ("lr", alae_phase_names(prior, options.get("reciprocity_step") == "folded"))}

    def _generate(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh w = F(z) and G(w) (flat, network range) for a batch of n."""
        w = self.mapping(self.prior.sample(n).to(like.dtype))
        return w, self.generator(w)

    def _generated_codes(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """E(G(F(z))) for the F+G phase, plus (folded) the reciprocity term that trains G (and F, if it should)."""
        w, fake = self._generate(n, like)
        codes = self.encoder(fake)
        if self.reciprocity_step != "folded":
            return codes, {}
        if self.reciprocity_updates_mapping:  # as the reference code: F gets the gradient through G(F(z)) too
            return codes, {"reciprocity": (codes - w.detach()).pow(2).mean()}
        w = w.detach()
        return codes, {"reciprocity": (self.encoder(self.generator(w)) - w).pow(2).mean()}

    def r1_penalty(self, real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
        """gamma/2 * mean over the batch of |d D(E(x)) / dx|^2 (x the network input), differentiable (R1)."""
        (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
        return 0.5 * self.r1_gamma * grad.pow(2).flatten(1).sum(1).mean()

    def discriminator_loss(self, x):
        real = self.to_network(x).detach().requires_grad_(self.r1_gamma > 0)
        with torch.no_grad():
            w, fake = self._generate(len(x), real)
        real_logits = self.discriminator(self.encoder(real))
        fake_codes = self.encoder(fake)
        adversarial = (F.softplus(self.discriminator(fake_codes)) + F.softplus(-real_logits)).mean()
        loss, logs = adversarial, {"discriminator": adversarial.detach()}
        if self.r1_gamma > 0:
            r1 = self.r1_penalty(real_logits, real)
            loss, logs["r1"] = loss + r1, r1.detach()
        if self.reciprocity_step == "folded":  # E's share of the reciprocity step, on the same generated images
            recip = (fake_codes - w).pow(2).mean()
            loss, logs["encoder_reciprocity"] = loss + recip, recip.detach()
        return loss, logs

    def generator_loss(self, x):
        codes, extra = self._generated_codes(len(x), x)
        loss = F.softplus(-self.discriminator(codes)).mean()
        logs = {"generator": loss.detach(), **{k: v.detach() for k, v in extra.items()}}
        return loss + sum(extra.values()), logs

    def reciprocity_loss(self, x):
        w, fake = self._generate(len(x), x)
        loss = (self.encoder(fake) - w.detach()).pow(2).mean()
        return loss, {"reciprocity": loss.detach()}

    # -- MBRCE-ALAE: the prior's divergence in place of D -----------------------------------------------------
    def code_divergence(self, fake_codes: torch.Tensor, real_codes: torch.Tensor) -> torch.Tensor:
        if self.scale_control == "normalize":
            pooled = torch.cat([fake_codes, real_codes])
            spread = (pooled - pooled.mean(0)).pow(2).sum(1).mean().add(1e-12).sqrt()
            fake_codes, real_codes = fake_codes / spread, real_codes / spread
        return self.prior.divergence(fake_codes, real_codes)

    def push_loss(self, x):
        with torch.no_grad():
            w, fake = self._generate(len(x), x)
        fake_codes, real_codes = self.encoder(fake), self.encode(x)
        divergence = self.code_divergence(fake_codes, real_codes)
        anchor = (fake_codes - w).pow(2).mean()
        logs = {
            "push": divergence.detach(),
            "push_reciprocity": anchor.detach(),
            "real_code_rms": real_codes.detach().pow(2).mean().sqrt(),
        }
        return -divergence + self.push_reciprocity * anchor, logs

    def pull_loss(self, x):
        with torch.no_grad():
            real_codes = self.encode(x)
        codes, extra = self._generated_codes(len(x), x)
        divergence = self.code_divergence(codes, real_codes)
        logs = {"pull": divergence.detach(), **{k: v.detach() for k, v in extra.items()}}
        return divergence + sum(extra.values()), logs
