"""Convolutional variational autoencoder (torch-vae: Markus Enzweiler's `menzHSE/torch-vae`)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.options import Fraction, PositiveInt
from genzoo.core.registry import MODELS
from genzoo.models.base import GenerativeAutoencoder, Phase
from genzoo.models.blocks import ACTIVATIONS, mlp
from genzoo.priors.base import Prior


def conv_sizes(size: int, layers: int) -> list[int]:
    """Spatial sizes after each stride-2, kernel-3, padding-1 convolution: size, ceil(size/2), ..."""
    sizes = [size]
    for _ in range(layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def gaussian_kl(
    mean: torch.Tensor, log_var: torch.Tensor, prior_mean: float = 0.0, prior_std: float = 1.0
) -> torch.Tensor:
    """KL( N(mean, exp(log_var)) || N(prior_mean, prior_std^2) ) per row, summed over dimensions (closed form)."""
    var_ratio = log_var.exp() / prior_std**2
    return 0.5 * (var_ratio + (mean - prior_mean).pow(2) / prior_std**2 - 1 - log_var + 2 * math.log(prior_std)).sum(1)


@MODELS.register("vae")
class ConvVAE(GenerativeAutoencoder):
    """Convolutional VAE of torch-vae: strided convs with filters doubling up to max_filters, KL prior.

    Encoder: `layers` stride-2 3x3 convolutions (filters max_filters/2^(layers-1) ... max_filters), BatchNorm and
    leaky ReLU, then two linear maps to the posterior mean and log-variance; reparameterisation. Decoder: a linear
    map back to the last feature map, stride-2 transposed convolutions with BatchNorm and leaky ReLU, sigmoid. Any
    image size works (the decoder's output padding is chosen per layer so that it lands on the input size).

    Loss per image, averaged over the batch: summed reconstruction error (`mse` as in torch-vae, or `bce`) plus
    `kl_weight` x the closed-form KL to the `gaussian` prior N(mean, std^2 I). With a prior that matches codes
    itself (`mbrce`) the KL term is replaced by `prior_weight` x `prior.matching_loss(z)` on the sampled codes:
    the arbitrary-prior VAE of the MBRCE paper. Any other prior with a density gets a one-sample Monte-Carlo KL.

    `network: mlp` swaps the conv nets for mlp_aae's MLPs (`hidden`, `layers`, `dropout`): a VAE of the same size
    as the AAE it is compared with (recipes/vae_mlp_mnist.yaml).

    the original's CLI maps onto a recipe as: --latent_dims -> model.latent_dim, --max_filters -> model.max_filters,
    --lr -> train.phases.vae.lr (default 3e-4), --batchsize -> train.batch_size, --epochs -> train.epochs,
    --seed -> seed, --dataset -> data.name, --cpu -> train.cpu: true.
    The seed optimises with AdamW (weight decay 0.01): train.phases.vae `{weight_decay: 0.01,
    decoupled_weight_decay: true}` (the shipped recipes); the phase's defaults are Adam without decay.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        prior: Prior,
        latent_dim: PositiveInt = 64,
        max_filters: int = 128,
        layers: PositiveInt = 3,
        reconstruction: Literal["mse", "bce"] = "mse",
        kl_weight: float = 1.0,
        prior_weight: float = 1.0,
        negative_slope: float = 0.01,
        network: Literal["conv", "mlp"] = "conv",
        hidden: PositiveInt = 1200,
        dropout: Fraction = 0.0,
    ):
        super().__init__(image_shape)
        if latent_dim < 1 or layers < 1 or max_filters < 2 ** (layers - 1):
            raise GenzooError(
                f"model 'vae' needs latent_dim >= 1, layers >= 1 and max_filters >= 2^(layers-1) "
                f"(got latent_dim {latent_dim}, layers {layers}, max_filters {max_filters})",
                "fix model.latent_dim / model.layers / model.max_filters",
            )
        self.prior = prior
        self.latent_dim = latent_dim
        self.reconstruction, self.kl_weight, self.prior_weight = reconstruction, kl_weight, prior_weight
        self._kl_mode = self._pick_kl(prior)
        if network == "mlp":  # the MLP AAE's networks, for size-matched comparisons (studies)
            self._build_mlp(image_shape, latent_dim, hidden, layers, dropout)
            return
        channels, height, width = image_shape
        filters = [max_filters // 2 ** (layers - 1 - i) for i in range(layers)]
        self.heights, self.widths = conv_sizes(height, layers), conv_sizes(width, layers)
        self.feature_shape = (filters[-1], self.heights[-1], self.widths[-1])
        act = lambda: nn.LeakyReLU(negative_slope)  # noqa: E731

        enc, c_in = [], channels
        for f in filters:
            enc += [nn.Conv2d(c_in, f, 3, stride=2, padding=1), nn.BatchNorm2d(f), act()]
            c_in = f
        enc.append(nn.Flatten())
        self.encoder = nn.Sequential(*enc)
        flat = math.prod(self.feature_shape)
        self.to_mean = nn.Linear(flat, latent_dim)
        self.to_log_var = nn.Linear(flat, latent_dim)

        dec: list[nn.Module] = [nn.Linear(latent_dim, flat), nn.Unflatten(1, self.feature_shape)]
        outs = [*filters[::-1][1:], channels]
        c_in = filters[-1]
        for i, f in enumerate(outs):
            level = layers - i  # from feature size heights[level] up to heights[level - 1]
            pad = (
                self.heights[level - 1] - (2 * self.heights[level] - 1),
                self.widths[level - 1] - (2 * self.widths[level] - 1),
            )
            dec.append(nn.ConvTranspose2d(c_in, f, 3, stride=2, padding=1, output_padding=pad))
            if i < len(outs) - 1:
                dec += [nn.BatchNorm2d(f), act()]
            c_in = f
        self.decoder = nn.Sequential(*dec)

    def _build_mlp(self, image_shape, latent_dim: int, hidden: int, layers: int, dropout: float) -> None:
        """pixels-hidden x layers-(mean, log_var) and latent-hidden x layers-pixels with ReLU and dropout: the same
        sizes as mlp_aae's encoder and decoder (784-1200-1200-2x8 and 8-1200-1200-784 in the MNIST study)."""
        pixels = math.prod(image_shape)
        tail = [ACTIVATIONS["relu"](), *([nn.Dropout(dropout)] if dropout > 0 else [])]
        self.encoder = nn.Sequential(nn.Flatten(), *mlp([pixels, *[hidden] * layers], "relu", dropout), *tail)
        self.to_mean = nn.Linear(hidden, latent_dim)
        self.to_log_var = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            *mlp([latent_dim, *[hidden] * layers, pixels], "relu", dropout), nn.Unflatten(1, tuple(image_shape))
        )

    @staticmethod
    def _pick_kl(prior: Prior) -> str:
        from genzoo.priors.gaussian import GaussianPrior

        if prior.matches_codes:
            return "matching"
        if isinstance(prior, GaussianPrior):
            return "analytic"
        if prior.has_log_prob:
            return "monte_carlo"
        raise GenzooError(
            f"prior '{type(prior).__name__}' cannot be used with model 'vae': it has no density for the "
            "KL term and does not match codes itself",
            "use prior gaussian, mixture or mbrce",
        )

    # -- the network ----------------------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mean(h), self.to_log_var(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean in eval mode; a reparameterised sample in training mode."""
        mean, log_var = self.posterior(x)
        if not self.training:
            return mean
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    # -- the loss -------------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("vae", ("encoder", "to_mean", "to_log_var", "decoder"), self.loss, 3e-4)]

    @classmethod
    def moved_options(cls, options: dict, prior) -> dict:
        """`lr`, `weight_decay` and `adamw` were options until train.phases held every optimiser setting."""
        return {
            "lr": ("lr", ("vae",)),
            "weight_decay": ("weight_decay", ("vae",)),
            "adamw": ("decoupled_weight_decay", ("vae",)),
        }

    def kl(self, mean: torch.Tensor, log_var: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per image: closed form for the Gaussian prior, else one Monte-Carlo sample z."""
        if self._kl_mode == "analytic":
            return gaussian_kl(mean, log_var, self.prior.mean, self.prior.std)
        if z is None:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        log_q = (-0.5 * ((z - mean) ** 2 / log_var.exp() + log_var + math.log(2 * math.pi))).sum(1)
        return log_q - self.prior.log_prob(z)

    def loss(self, x: torch.Tensor):
        mean, log_var = self.posterior(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        logits = self.decode_logits(z)
        n = x.shape[0]
        if self.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        else:
            rec = F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / n
        if self._kl_mode == "matching":
            reg = self.prior.matching_loss(z)
            return rec + self.prior_weight * reg, {"reconstruction": rec.detach(), "prior": reg.detach()}
        kl = self.kl(mean, log_var, z).mean()
        return rec + self.kl_weight * kl, {"reconstruction": rec.detach(), "kl": kl.detach()}
