"""StyleALAE: the style-based Adversarial Latent Autoencoder (Pidhorskyi et al., CVPR 2020; podgorskiy/ALAE's
`EncoderDefault` / `GeneratorDefault`, the CelebA-HQ configuration), and its MBRCE variant without a
discriminator (the flagship of the MBRCE-AAE project; docs/mbrce.md, our design).

Networks (every conv and linear layer has an equalised learning rate, leaky ReLU 0.2; level i of `levels` works
at resolutions[i] = start_resolution * 2**i with filters(i) = min(start_filters * 2**(levels-1-i), max_filters)):
  F  mapping    z -> w: pixel-norm(z), then `mapping_layers` linear layers of width latent_dim, each followed by
                leaky ReLU; lr multiplier `mapping_lr_mult` (0.1). G takes w in each of its 2 * levels style slots.
  G  generator  styles -> image: a learned constant (start_resolution^2, ones); per level a block of
                [2x nearest upsample, 3x3 conv, blur] (from level 1), then twice: per-pixel noise x learned
                per-channel scale, bias, leaky ReLU, instance norm, AdaIN x * (1 + a) + b with (a, b) a linear
                map of the block's next style slot (the second time after a 3x3 conv); to_rgb per level (1x1 conv,
                gain 0.03)
  E  encoder    image -> w: from_rgb per level (1x1 conv, leaky ReLU); per level a block: 3x3 conv, leaky ReLU,
                per-channel instance mean/std -> linear -> style, instance norm; blur, 3x3 conv + 2x average-pool
                downsample, leaky ReLU, mean/std -> linear -> style, instance norm. w = sum of every block's styles.
  D  discriminator on w: 3 linear layers, lr multiplier 0.1, no nonlinearity (as mlp_alae and ALAE's MappingD)

Progressive growing (the trainer drives it): `set_growth(resolution, blend)` picks the level that G outputs and E
reads. While a new level blends in (blend < 1), G's output is lerp(2x nearest upsample of the previous level's
to_rgb, the new level's to_rgb, blend), and E's is computed from lerp(from_rgb of the 2x-downsampled image, the new
block's output, blend), the new block's styles weighted by blend: at blend 0 both are exactly the previous level's.
The level and blend are persistent buffers, so checkpoints and exports carry them; a new model is at full size.

Images are [0, 1] outside and 2x - 1 inside. `encode(x)` = E(x) = w (images larger than the current level are
average-pooled down to it), `decode(w)` = G(w) (w of shape (N, latent) goes to every slot, or (N, slots, latent)),
`code_from_prior(z)` = F(z), `sample(n)` = G(truncated F(z)): the first `truncation_cutoff` slots are moved towards
`dlatent_avg` (a running mean of F(z), beta `dlatent_avg_beta`, tracked in the F+G step) by `truncation_psi`.
`style_mix(source, target, which)` gives target's styles with the source's coarse (4-8), middle (16-32) or fine
(64+) slots, by resolution as in StyleGAN (`genzoo stylemix` draws the MBRCE-AAE project's grids with it).

ALAE's three steps per batch, as mlp_alae with `reciprocity_step: separate`; every phase names optimizer "alae", so
the trainer keeps ALAE's two Adam states (E+D, F+G) and the reciprocity step steps both (Adam beta1 = 0,
beta2 = 0.99, lr 0.0015):
  discriminator (E, D): softplus(D(E(G(F(z))))) + softplus(-D(E(x))) + gamma/2 |grad_x D(E(x))|^2 (R1, every step)
  generator     (F, G): softplus(-D(E(G(F(z)))))                                       (E and D frozen)
  reciprocity   (E, G, F if reciprocity_updates_mapping): mean((E(G(F(z))) - F(z).detach())^2)
Style mixing: in the adversarial steps each generated image takes, with probability `style_mixing_prob`, the
styles of a second F(z') from a random crossover slot on (per sample; ALAE draws once per batch); the reciprocity
step uses unmixed styles, which E can invert. With a prior that matches codes itself (`mbrce`), D is not built and
mlp_alae's push / pull / reciprocity steps replace the first two (push's anchor |E(G(w)) - w|^2 counts the unmixed
images only), with its scale control.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.options import PositiveInt
from genzoo.core.registry import MODELS
from genzoo.models.base import GenerativeAutoencoder, Phase
from genzoo.models.blocks import SLOPE, EqualConv2d, EqualLinear, PixelNorm, equal_mlp
from genzoo.models.mlp_alae import MLPALAE, alae_phase_names, check_alae_prior
from genzoo.priors.base import Prior

STYLE_KINDS = {"coarse": (0, 8), "middle": (16, 32), "fine": (64, None)}  # resolutions whose slots each kind takes
FUSED_FROM = 128  # resample in one strided conv from this resolution up (ALAE's fused_scale; same function)


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 filter: smooths before downsampling and after upsampling."""

    def __init__(self):
        super().__init__()
        f = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (f[:, None] * f[None, :] / 16).view(1, 1, 3, 3), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


def instance_stats(x: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over the pixels, (N, C, 1, 1) each."""
    mean = x.mean((2, 3), keepdim=True)
    return mean, (x - mean).pow(2).mean((2, 3), keepdim=True).add(eps).sqrt()


def noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per-pixel N(0, 1) noise (N, 1, H, W), from `generator` (drawn where it lives) or the global RNG."""
    shape = (x.shape[0], 1, *x.shape[2:])
    if generator is not None and generator.device != x.device:
        return torch.randn(shape, generator=generator).to(x.device, x.dtype)
    return torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)


class GeneratorBlock(nn.Module):
    """One level of G: [upsample, conv, blur] (not on the constant), then two noise-bias-norm-AdaIN layers."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int, first: bool, fused: bool):
        super().__init__()
        self.conv_1 = (
            None if first else EqualConv2d(in_channels, out_channels, 3, bias=False, resample="up", fused=fused)
        )
        self.blur = Blur()
        self.conv_2 = EqualConv2d(out_channels, out_channels, 3, bias=False)
        self.noise_1, self.noise_2 = (nn.Parameter(torch.zeros(1, out_channels, 1, 1)) for _ in range(2))
        self.bias_1, self.bias_2 = (nn.Parameter(torch.zeros(1, out_channels, 1, 1)) for _ in range(2))
        self.style_1, self.style_2 = (EqualLinear(latent_dim, 2 * out_channels, gain=1.0) for _ in range(2))

    @staticmethod
    def _layer(x, noise_scale, bias, style, w, generator):
        x = F.leaky_relu(x + noise_scale * noise_like(x, generator) + bias, SLOPE)
        mean, std = instance_stats(x)
        scale, shift = style(w).view(len(x), 2, x.shape[1], 1, 1).unbind(1)
        return (x - mean) / std * (scale + 1) + shift

    def forward(self, x, w1, w2, generator=None):
        if self.conv_1 is not None:
            x = self.blur(self.conv_1(x))
        x = self._layer(x, self.noise_1, self.bias_1, self.style_1, w1, generator)
        return self._layer(self.conv_2(x), self.noise_2, self.bias_2, self.style_2, w2, generator)


class StyleGenerator(nn.Module):
    def __init__(self, filters: list[int], channels: int, latent_dim: int, resolutions: list[int]):
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, filters[0], resolutions[0], resolutions[0]))
        self.blocks = nn.ModuleList(
            GeneratorBlock(filters[max(i - 1, 0)], f, latent_dim, i == 0, r >= FUSED_FROM)
            for i, (f, r) in enumerate(zip(filters, resolutions))
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(f, channels, 1, gain=0.03) for f in filters)

    def forward(self, styles: torch.Tensor, level: int, blend: float, generator=None) -> torch.Tensor:
        """styles (N, slots, latent) -> images at resolutions[level], network range."""
        x = self.const.expand(len(styles), -1, -1, -1)
        for i in range(level + 1):
            if i == level and blend < 1:
                previous = self.to_rgb[i - 1](x)
            x = self.blocks[i](x, styles[:, 2 * i], styles[:, 2 * i + 1], generator)
        out = self.to_rgb[level](x)
        return out if blend >= 1 else torch.lerp(F.interpolate(previous, scale_factor=2), out, blend)


class EncoderBlock(nn.Module):
    """One level of E: two conv layers, each contributing a style from its instance statistics; halves the size."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int, fused: bool):
        super().__init__()
        self.conv_1 = EqualConv2d(in_channels, in_channels, 3)
        self.blur = Blur()
        self.conv_2 = EqualConv2d(in_channels, out_channels, 3, resample="down", fused=fused)
        self.style_1 = EqualLinear(2 * in_channels, latent_dim)
        self.style_2 = EqualLinear(2 * out_channels, latent_dim)

    @staticmethod
    def _layer(x, style):
        x = F.leaky_relu(x, SLOPE)
        mean, std = instance_stats(x)
        return (x - mean) / std, style(torch.cat([mean, std], 1).flatten(1))

    def forward(self, x):
        x, w1 = self._layer(self.conv_1(x), self.style_1)
        x, w2 = self._layer(self.conv_2(self.blur(x)), self.style_2)
        return x, w1 + w2


class StyleEncoder(nn.Module):
    def __init__(self, filters: list[int], below: int, channels: int, latent_dim: int, resolutions: list[int]):
        super().__init__()
        self.from_rgb = nn.ModuleList(EqualConv2d(channels, f, 1) for f in filters)
        # level i hands level i-1 its input channels; the lowest block's output only yields its style (ALAE)
        self.blocks = nn.ModuleList(
            EncoderBlock(f, filters[i - 1] if i else below, latent_dim, r >= FUSED_FROM)
            for i, (f, r) in enumerate(zip(filters, resolutions))
        )

    def forward(self, x: torch.Tensor, level: int, blend: float) -> torch.Tensor:
        """Images at resolutions[level], network range -> w (N, latent)."""
        h, w = self.blocks[level](F.leaky_relu(self.from_rgb[level](x), SLOPE))
        if blend < 1:
            previous = F.leaky_relu(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), SLOPE)
            h, w = torch.lerp(previous, h, blend), w * blend
        for i in range(level - 1, -1, -1):
            h, style = self.blocks[i](h)
            w = w + style
        return w


@MODELS.register("style_alae")
class StyleALAE(GenerativeAutoencoder):
    """Style-based ALAE (ALAE's CelebA-HQ networks) with progressive growing; MBRCE-StyleALAE with the mbrce prior.

    F maps z to w, G is a style-based generator with noise and AdaIN, E sums styles from instance statistics, D
    discriminates on w. Phases: discriminator (E+D, R1), generator (F+G), reciprocity (E+G); with mbrce: push,
    pull, reciprocity. All share ALAE's two Adam states (optimizer "alae").
    """

    phases_with_other_priors = ("discriminator", "generator", "push", "pull")

    # The latent game's pieces are the MLP ALAE's (they use self.prior, self.r1_gamma, self.scale_control).
    r1_penalty = MLPALAE.r1_penalty
    code_divergence = MLPALAE.code_divergence

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        prior: Prior,
        latent_dim: PositiveInt = 512,
        mapping_layers: PositiveInt = 8,
        start_filters: int = 64,
        max_filters: int = 512,
        start_resolution: int = 4,
        mapping_lr_mult: float = 0.1,
        r1_gamma: float = 10.0,
        style_mixing_prob: float = 0.9,
        truncation_psi: float = 0.7,
        truncation_cutoff: int = 8,
        dlatent_avg_beta: float = 0.995,
        reciprocity_updates_mapping: bool = True,
        scale_control: Literal["normalize", "none"] = "normalize",
        push_reciprocity: float = 1.0,
    ):
        super().__init__(image_shape)
        channels, height, width = self.image_shape
        if channels not in (1, 3) or height != width or height < 8 or height & (height - 1):
            raise GenzooError(
                f"model 'style_alae' needs grey or RGB square images of a power-of-two size >= 8, got "
                f"{channels}x{height}x{width}",
                "resize the data (data.size) to e.g. 64",
            )
        if not 4 <= start_resolution <= height or start_resolution & (start_resolution - 1):
            raise GenzooError(
                f"model.start_resolution must be a power of two from 4 to {height}, got {start_resolution}",
                "use 4, as ALAE",
            )
        if min(latent_dim, mapping_layers, start_filters, max_filters) < 1 or not 0 <= style_mixing_prob <= 1:
            raise GenzooError(
                "model 'style_alae' needs latent_dim, mapping_layers, start_filters, max_filters >= 1 "
                "and style_mixing_prob in [0, 1]",
                "fix those model keys",
            )
        check_alae_prior(prior, "style_alae")
        self.prior, self.latent_dim = prior, latent_dim
        self.r1_gamma = r1_gamma
        self.style_mixing_prob, self.dlatent_avg_beta = style_mixing_prob, dlatent_avg_beta
        self.truncation_psi, self.truncation_cutoff = truncation_psi, truncation_cutoff
        self.reciprocity_updates_mapping = reciprocity_updates_mapping
        self.scale_control, self.push_reciprocity = scale_control, push_reciprocity

        levels = (height // start_resolution).bit_length()
        self.resolutions = [start_resolution << i for i in range(levels)]
        self.slots = 2 * levels
        filters = [min(start_filters * 2 ** (levels - 1 - i), max_filters) for i in range(levels)]
        self.mapping = nn.Sequential(
            PixelNorm(), *equal_mlp([latent_dim] * (mapping_layers + 1), mapping_lr_mult, activate_last=True)
        )
        self.generator = StyleGenerator(filters, channels, latent_dim, self.resolutions)
        self.encoder = StyleEncoder(
            filters, min(start_filters * 2**levels, max_filters), channels, latent_dim, self.resolutions
        )
        self.discriminator = None if prior.matches_codes else equal_mlp([latent_dim] * 3 + [1], 0.1, activation=False)
        self.register_buffer("dlatent_avg", torch.zeros(latent_dim))
        self.register_buffer("growth_level", torch.tensor(levels - 1))
        self.register_buffer("growth_blend", torch.tensor(1.0))
        self._level, self._blend = levels - 1, 1.0  # Python copies: reading the buffers would sync a GPU
        self.register_load_state_dict_post_hook(StyleALAE._after_load)

    # -- progressive growing ----------------------------------------------------------------------------------
    def set_growth(self, resolution: int, blend: float = 1.0) -> None:
        """Work at `resolution` (one of self.resolutions), its newest block blended in by `blend` in [0, 1]."""
        if resolution not in self.resolutions:
            raise GenzooError(
                f"style_alae has no level at {resolution}x{resolution}",
                f"its levels: {', '.join(map(str, self.resolutions))}",
            )
        level = self.resolutions.index(resolution)
        if not 0 <= blend <= 1 or (level == 0 and blend < 1):
            raise GenzooError(
                f"growth blend must be in [0, 1] (1 at the first level), got {blend} at {resolution}",
                "fix the growth schedule",
            )
        self.growth_level.fill_(level)
        self.growth_blend.fill_(blend)
        self._level, self._blend = level, float(blend)

    @staticmethod
    def _after_load(module: StyleALAE, incompatible_keys) -> None:
        module._level, module._blend = int(module.growth_level), float(module.growth_blend)

    @property
    def resolution(self) -> int:
        return self.resolutions[self._level]

    # -- the model's interface ------------------------------------------------------------------------------
    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] at the current resolution or a multiple of it -> network inputs in [-1, 1]."""
        size = x.shape[-1]
        if size != self.resolution:
            if size % self.resolution or size < self.resolution:
                raise GenzooError(
                    f"style_alae at {self.resolution}x{self.resolution} cannot read {size}x{size} images",
                    f"give images of {self.resolution}x{self.resolution} or a multiple",
                )
            x = F.avg_pool2d(x, size // self.resolution)
        return x * 2 - 1

    def _encode(self, x_net: torch.Tensor) -> torch.Tensor:
        return self.encoder(x_net, self._level, self._blend)

    def _generate(self, styles: torch.Tensor, generator=None) -> torch.Tensor:
        return self.generator(styles, self._level, self._blend, generator)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(self.to_network(x))

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, latent) -> styles (N, slots, latent), w in every slot; (N, slots, latent) is returned as is."""
        if w.dim() == 3:
            if w.shape[1] != self.slots:
                raise GenzooError(
                    f"style_alae takes {self.slots} style slots, got {w.shape[1]}",
                    "give w of shape (N, latent) or (N, slots, latent)",
                )
            return w
        return w.unsqueeze(1).expand(-1, self.slots, -1)

    def decode(self, w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return ((self._generate(self.broadcast(w), generator) + 1) / 2).clamp(0, 1)

    def code_from_prior(self, z: torch.Tensor) -> torch.Tensor:
        return self.mapping(z)

    def truncate(self, styles: torch.Tensor, psi: float | None = None) -> torch.Tensor:
        """Move the first truncation_cutoff slots towards the average w by psi (1: unchanged, 0: the average)."""
        psi = self.truncation_psi if psi is None else psi
        slot = torch.arange(self.slots, device=styles.device)
        coef = torch.where(slot < self.truncation_cutoff, psi, 1.0).to(styles.dtype)[:, None]
        return torch.lerp(self.dlatent_avg.to(styles.dtype), styles, coef)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.code_sampler is not None:  # fitted on encoder outputs w: no truncation towards the average
            return self.decode_fitted(n, generator)
        w = self.mapping(self.prior.sample(n, generator=generator))
        return self.decode(self.truncate(self.broadcast(w)), generator)

    def style_slots(self, which: Literal["coarse", "middle", "fine"]) -> list[int]:
        """The style slots of G's levels at coarse (4-8), middle (16-32) or fine (64+) resolutions."""
        if which not in STYLE_KINDS:
            raise GenzooError(f"unknown style kind '{which}'", f"use one of: {', '.join(STYLE_KINDS)}")
        low, high = STYLE_KINDS[which]
        return [k for k in range(self.slots) if low <= self.resolutions[k // 2] <= (high or self.resolutions[-1])]

    def style_mix(
        self, source_w: torch.Tensor, target_w: torch.Tensor, which: Literal["coarse", "middle", "fine"]
    ) -> torch.Tensor:
        """Target's styles with the source's in the `which` slots; (N, slots, latent), for `decode`."""
        mixed = self.broadcast(target_w).clone()
        slots = self.style_slots(which)
        mixed[:, slots] = self.broadcast(source_w)[:, slots]
        return mixed

    # -- phases ---------------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        lr, betas = 0.0015, (0.0, 0.99)  # ALAE's Adam for CelebA-HQ
        recip = ("encoder", "generator", "mapping") if self.reciprocity_updates_mapping else ("encoder", "generator")
        if self.prior.matches_codes:
            steps = [("push", ("encoder",), self.push_loss), ("pull", ("mapping", "generator"), self.pull_loss)]
        else:
            steps = [
                ("discriminator", ("encoder", "discriminator"), self.discriminator_loss),
                ("generator", ("mapping", "generator"), self.generator_loss),
            ]
        steps.append(("reciprocity", recip, self.reciprocity_loss))
        return [Phase(name, modules, loss, lr, betas, optimizer="alae") for name, modules, loss in steps]

    @classmethod
    def moved_options(cls, options: dict, prior) -> dict:
        """`lr` and `betas` were options (of every phase) until train.phases held every optimiser setting."""
        phases = alae_phase_names(prior)
        return {"lr": ("lr", phases), "betas": ("betas", phases)}

    def _training_styles(self, n: int, like: torch.Tensor, mix: bool = True):
        """w = F(z) for n fresh draws, the styles G gets (w in every slot, or with style mixing: from a random
        crossover slot on, those of a second w' = F(z'), for each sample with probability style_mixing_prob), and
        which samples are unmixed."""
        w = self.mapping(self.prior.sample(n).to(like.dtype))
        styles = self.broadcast(w)
        used = 2 * (self._level + 1)  # the slots the current level reads
        cut = torch.full((n,), used, device=w.device)
        if mix and self.style_mixing_prob > 0:
            mixed = torch.rand(n, device=w.device) < self.style_mixing_prob
            cut = torch.where(mixed, torch.randint(1, used, (n,), device=w.device), cut)
            other = self.mapping(self.prior.sample(n).to(like.dtype))
            slot = torch.arange(self.slots, device=w.device)
            styles = torch.where((slot < cut[:, None])[..., None], styles, other[:, None])
        return w, styles, cut >= used

    @torch.no_grad()
    def _track_average(self, w: torch.Tensor) -> None:
        self.dlatent_avg.lerp_(w.detach().mean(0).to(self.dlatent_avg.dtype), 1 - self.dlatent_avg_beta)

    def discriminator_loss(self, x):
        real = self.to_network(x).detach().requires_grad_(self.r1_gamma > 0)
        with torch.no_grad():
            fake = self._generate(self._training_styles(len(x), real)[1])
        real_logits = self.discriminator(self._encode(real))
        adversarial = (F.softplus(self.discriminator(self._encode(fake))) + F.softplus(-real_logits)).mean()
        loss, logs = adversarial, {"discriminator": adversarial.detach()}
        if self.r1_gamma > 0:
            r1 = self.r1_penalty(real_logits, real)
            loss, logs["r1"] = loss + r1, r1.detach()
        return loss, logs

    def generator_loss(self, x):
        w, styles, _ = self._training_styles(len(x), x)
        self._track_average(w)
        loss = F.softplus(-self.discriminator(self._encode(self._generate(styles)))).mean()
        return loss, {"generator": loss.detach()}

    def reciprocity_loss(self, x):
        w, styles, _ = self._training_styles(len(x), x, mix=False)
        if not self.reciprocity_updates_mapping:
            styles = styles.detach()
        loss = (self._encode(self._generate(styles)) - w.detach()).pow(2).mean()
        return loss, {"reciprocity": loss.detach()}

    # -- MBRCE-StyleALAE: the prior's divergence in place of D --------------------------------------------------
    def push_loss(self, x):
        with torch.no_grad():
            w, styles, unmixed = self._training_styles(len(x), x)
            fake = self._generate(styles)
        fake_codes, real_codes = self._encode(fake), self.encode(x)
        divergence = self.code_divergence(fake_codes, real_codes)
        keep = unmixed.to(w.dtype)  # mixed images have no single w to anchor to
        anchor = ((fake_codes - w).pow(2).mean(1) * keep).sum() / keep.sum().clamp_min(1)
        logs = {
            "push": divergence.detach(),
            "push_reciprocity": anchor.detach(),
            "real_code_rms": real_codes.detach().pow(2).mean().sqrt(),
        }
        return -divergence + self.push_reciprocity * anchor, logs

    def pull_loss(self, x):
        with torch.no_grad():
            real_codes = self.encode(x)
        w, styles, _ = self._training_styles(len(x), x)
        self._track_average(w)
        divergence = self.code_divergence(self._encode(self._generate(styles)), real_codes)
        return divergence, {"pull": divergence.detach()}
