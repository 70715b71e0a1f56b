"""Latent Bernoulli Autoencoder (the LBAE paper: Fajtl et al., ICML 2020, `ok1zjf/LBAE`).

Codes are binary, b = sign(tanh(W h)) in {-1, +1}^z, trained with a straight-through gradient and no prior loss.
New codes come from a sampler fitted on the training codes after training (`prepare_export`):

- `cov`: the arcsine law. For b = sign(a), a ~ N(0, H), E[b_i b_j] = 2/pi arcsin(H_ij); so to reproduce the
  training codes' second moments G (augmented with their means through an extra always-on coordinate) draw
  a ~ N(0, H) with H = sin(pi/2 G), made positive definite by Higham's nearest-SPD fix where needed.
- `random`: i.i.d. +-1.
- interpolation: codes along a great circle between the sphere directions of two codes (the reference's `int`).

The fitted sampler is a set of buffers (`prior.*`), so it is saved in model.safetensors with the weights.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.options import PositiveInt
from genzoo.core.registry import MODELS
from genzoo.models.base import GenerativeAutoencoder, Phase
from genzoo.priors.base import Prior
from genzoo.samplers.arcsine import arcsine_factor, draw_arcsine


class _SignST(torch.autograd.Function):
    """sign(x) with sign(0) = +1, exactly +-1 forward; identity gradient backward (straight-through)."""

    @staticmethod
    def forward(ctx, x):
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        return grad


def binarize(x: torch.Tensor) -> torch.Tensor:
    return _SignST.apply(x)


class BernoulliCodes(Prior):
    """LBAE's code distribution: i.i.d. +-1 until fitted, then the arcsine-law (`cov`) sampler.

    Not a registered prior: LBAE builds it itself (its recipes have no prior section). Buffers: `fitted`
    (0/1), `chol` (Cholesky factor, (z+1, z+1)), `code_mean` (z,), `fit_images`.
    """

    def __init__(self, dim: int, method: Literal["cov", "random"] = "cov"):
        super().__init__(dim)
        self.method = method
        self.register_buffer("fitted", torch.zeros((), dtype=torch.uint8))
        self.register_buffer("chol", torch.eye(dim + 1))
        self.register_buffer("code_mean", torch.zeros(dim))
        self.register_buffer("fit_images", torch.zeros((), dtype=torch.int64))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @torch.no_grad()
    def fit(self, codes: torch.Tensor) -> bool:
        """Fit on +-1 codes (n, z); returns whether H needed Higham's fix."""
        b = codes.detach().double()
        return self.fit_moments(b.T @ b / len(b), b.mean(0), len(b))

    @torch.no_grad()
    def fit_moments(self, second: torch.Tensor, mean: torch.Tensor, n: int) -> bool:
        chol, mean, fixed = arcsine_factor(second, mean)
        self.chol.copy_(chol.to(self.chol.dtype))
        self.code_mean.copy_(mean.to(self.code_mean.dtype))
        self.fitted.fill_(1)
        self.fit_images.fill_(n)
        return fixed

    def sample(self, n, generator=None, method: str | None = None):
        method = method or self.method
        if method == "cov" and self.is_fitted:
            return draw_arcsine(self.chol, self.randn(n, self.dim + 1, generator=generator))
        if method not in ("cov", "random"):
            raise GenzooError(f"unknown LBAE sampling method '{method}'", "use cov or random")
        u = torch.rand(n, self.dim, generator=generator).to(self.device)
        return torch.where(u < 0.5, -1.0, 1.0)

    # -- interpolation on the sphere (the reference's `int`) ------------------------------------------------
    def direction(self, code: torch.Tensor, refine: int = 10) -> torch.Tensor:
        """A unit vector v with sign(L v) matching `code` (z,) on as many coordinates as we can find.

        The reference's split_sphere: the normalised mean of the rows of L whose bit is +1 minus that of the rows
        whose bit is -1, each mean refined by re-weighting the rows it still gets wrong.
        """
        rows = self.chol[:-1].double()
        code = code.double()

        def side(sel):
            group = rows[sel]
            if len(group) == 0:
                return torch.zeros(rows.shape[1], dtype=rows.dtype, device=rows.device)
            weights = torch.ones(len(group), dtype=rows.dtype, device=rows.device)
            best, best_wrong = None, None
            for _ in range(refine):
                p = (weights[:, None] * group).sum(0)
                p = p / p.norm().clamp_min(1e-12)
                wrong = group @ p < 0
                if best_wrong is None or int(wrong.sum()) < best_wrong:
                    best, best_wrong = p, int(wrong.sum())
                if not wrong.any():
                    break
                weights = weights + wrong.to(weights.dtype)
            return best

        m = side(code > 0) - side(code < 0)
        return m / m.norm().clamp_min(1e-12)

    def codes_along(self, v: torch.Tensor) -> torch.Tensor:
        """Codes sign(L v) for directions v (k, z+1), corrected by the augmented coordinate, cut to z."""
        a = v.to(self.chol.dtype) @ self.chol.T
        b = torch.where(a >= 0, 1.0, -1.0)
        return b[:, :-1] * b[:, -1:]


def slerp(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between unit vectors a and b at fractions t (k,) -> (k, d)."""
    omega = torch.arccos((a @ b).clamp(-1, 1))
    t = t.to(a.dtype)[:, None]
    if float(torch.sin(omega)) < 1e-8:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


# -- the network ---------------------------------------------------------------------------------------------
class _Residual(nn.Module):
    """The reference's block: (up/down) conv -> BN, then two 3x3 conv+BN with leaky ReLU, added back, leaky ReLU."""

    def __init__(self, c_in: int, c_out: int, slope: float, up: bool):
        super().__init__()
        conv = nn.ConvTranspose2d if up else nn.Conv2d
        self.resample = conv(c_in, c_out, 4, stride=2, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x):
        y = self.bn0(self.resample(x))
        x = self.act(self.bn1(self.conv1(self.act(y))))
        return self.act(self.bn2(self.conv2(x)) + y)


@MODELS.register("lbae")
class LBAE(GenerativeAutoencoder):
    """Latent Bernoulli autoencoder of the LBAE paper (ICML 2020): binary +-1 codes, residual conv nets, fitted
    sampler.

    Encoder: 3x3 conv (base_channels) + BN + leaky ReLU (0.02); `levels` residual levels, each a stride-2 4x4 conv
    doubling the channels (up to max_channels) and two 3x3 convs; a last stride-2 4x4 conv to max_channels; then
    Linear -> tanh -> sign with a straight-through gradient. Decoder mirrors it with transposed convs and ends in a
    sigmoid. Defaults reproduce the reference's ConvResBlock32 nets for 32x32 (2 levels) and 64x64 (3 levels).
    Loss: reconstruction error summed over pixels, averaged over the batch (MSE; BCE for MNIST). No prior.

    After training, `prepare_export` fits the `cov` sampler on the training codes; `sample()` then uses it
    (`sample_method: random` draws i.i.d. +-1). `interpolate` and `attribute_direction`/`change_attribute`
    are the reference's interpolation and attribute change.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: PositiveInt = 1500,
        base_channels: int = 64,
        max_channels: int = 256,
        levels: int | None = None,
        decoder_start_channels: int | None = None,
        reconstruction: Literal["mse", "bce"] = "mse",
        negative_slope: float = 0.02,
        init_std: float = 0.02,
        sample_method: Literal["cov", "random"] = "cov",
        fit_images: int | None = None,
        fit_batch_size: int = 500,
    ):
        super().__init__(image_shape)
        channels, height, width = image_shape
        if levels is None:
            levels = max(0, int(math.floor(math.log2(max(min(height, width), 1) / 4))) - 1)
        stride = 2 ** (levels + 1)
        if height % stride or width % stride or min(height, width) < stride:
            raise GenzooError(
                f"model 'lbae' with {levels} levels needs image sides divisible by {stride}, got {height}x{width}",
                "pad or resize the images (e.g. data.pad=2 for MNIST), or set model.levels",
            )
        self.latent_dim, self.reconstruction = latent_dim, reconstruction
        self.fit_images_max, self.fit_batch_size = fit_images, fit_batch_size
        self.prior = BernoulliCodes(latent_dim, sample_method)
        widths = [min(base_channels * 2**i, max_channels) for i in range(levels)]
        last = widths[-1] if widths else base_channels
        self.feature_shape = (max_channels, height // stride, width // stride)
        enc: list[nn.Module] = [
            nn.Conv2d(channels, base_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.LeakyReLU(negative_slope),
        ]
        c_in = base_channels
        for w in widths:
            enc.append(_Residual(c_in, w, negative_slope, up=False))
            c_in = w
        enc += [nn.Conv2d(c_in, max_channels, 4, stride=2, padding=1, bias=False), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        self.to_code = nn.Linear(math.prod(self.feature_shape), latent_dim)

        start = decoder_start_channels or last
        self.decoder_input = (start, height // stride, width // stride)
        dec: list[nn.Module] = [
            nn.Linear(latent_dim, math.prod(self.decoder_input)),
            nn.Unflatten(1, self.decoder_input),
        ]
        c_in = start
        for w in widths[::-1]:
            dec.append(_Residual(c_in, w, negative_slope, up=True))
            c_in = w
        dec += [
            nn.ConvTranspose2d(c_in, base_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(base_channels, channels, 3, padding=1, bias=False),
        ]
        self.decoder = nn.Sequential(*dec)
        for m in self.modules():  # the reference's init: conv weights ~ N(0, 0.02)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, init_std)

    # -- codes ----------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Binary codes in {-1, +1}^z (exactly), straight-through gradient."""
        return binarize(torch.tanh(self.to_code(self.encoder(x))))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def phases(self) -> list[Phase]:
        return [Phase("autoencoder", ("encoder", "to_code", "decoder"), self.loss, 1e-3)]  # the reference's Adam

    @classmethod
    def moved_options(cls, options: dict, prior) -> dict:
        """`lr` and `weight_decay` were options until train.phases held every optimiser setting."""
        return {"lr": ("lr", ("autoencoder",)), "weight_decay": ("weight_decay", ("autoencoder",))}

    def loss(self, x: torch.Tensor):
        logits = self.decode_logits(self.encode(x))
        if self.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        else:
            rec = F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / x.shape[0]
        return rec, {"reconstruction": rec.detach()}

    # -- the fitted sampler ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_dataset(self, dataset, limit: int | None = None) -> torch.Tensor:
        """Codes of the first `limit` images of an ImageDataset (eval mode is the caller's business)."""
        from genzoo.datasets.base import to_unit_float

        device = next(self.parameters()).device
        n = len(dataset) if limit is None else min(limit, len(dataset))
        out = []
        for start in range(0, n, self.fit_batch_size):
            idx = list(range(start, min(start + self.fit_batch_size, n)))
            out.append(self.encode(to_unit_float(dataset.__getitems__(idx).to(device))).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def code_moments(self, dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Second moments b^T b / n and means of the codes of the first `limit` images, accumulated batch by batch
        (float64; per-batch products of +-1 codes are exact integers in float32), never holding all codes."""
        from genzoo.datasets.base import to_unit_float

        device = next(self.parameters()).device
        n = len(dataset) if limit is None else min(limit, len(dataset))
        second = torch.zeros(self.latent_dim, self.latent_dim, dtype=torch.float64, device=device)
        total = torch.zeros(self.latent_dim, dtype=torch.float64, device=device)
        for start in range(0, n, self.fit_batch_size):
            idx = list(range(start, min(start + self.fit_batch_size, n)))
            b = self.encode(to_unit_float(dataset.__getitems__(idx).to(device))).float()
            second += (b.T @ b).double()
            total += b.sum(0).double()
        return second / n, total / n, n

    @torch.no_grad()
    def prepare_export(self, train_dataset) -> None:
        """Fit the `cov` sampler on the training codes (called by the trainer, in eval mode, before each export)."""
        was_training = self.training
        self.eval()
        self.prior.fit_moments(*self.code_moments(train_dataset, self.fit_images_max))
        self.train(was_training)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, method: str | None = None) -> torch.Tensor:
        """Decode n sampled codes: `cov` when fitted (else i.i.d. +-1), or `random`; a fitted sampler's when set."""
        if self.code_sampler is not None and method is None:
            return self.decode_fitted(n, generator)
        return self.decode(self.prior.sample(n, generator=generator, method=method))

    @torch.no_grad()
    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, steps: int = 10) -> torch.Tensor:
        """Images (len(x0), steps + 2, C, H, W): each x0 reconstructed, `steps` codes between, x1 reconstructed.

        With a fitted sampler the codes move along the great circle between the two codes' sphere directions
        (the reference's `int`); unfitted, along a Hamming path flipping the differing bits in a fixed order.
        """
        b0, b1 = self.encode(x0), self.encode(x1)
        codes = torch.stack(
            [torch.cat([c0[None], self.codes_between(c0, c1, fractions(steps)), c1[None]]) for c0, c1 in zip(b0, b1)]
        )
        return self.decode(codes.flatten(0, 1)).unflatten(0, codes.shape[:2])

    @torch.no_grad()
    def codes_between(self, c0: torch.Tensor, c1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Binary codes (k, z) at fractions t (k,) of the way from code c0 to c1: along the great circle between
        their sphere directions when the sampler is fitted (the reference's `int`), else along a Hamming path
        (capabilities.DrawsCodePaths). A straight line between +-1 codes would leave the codes the decoder was
        trained on."""
        t = torch.as_tensor(t, dtype=torch.float64, device=c0.device).reshape(-1)
        if not self.prior.is_fitted:
            return hamming_codes(c0, c1, t)
        return self.prior.codes_along(slerp(t, self.prior.direction(c0), self.prior.direction(c1)).float())

    # -- attribute change ------------------------------------------------------------------------------------
    @torch.no_grad()
    def attribute_direction(self, dataset, attribute: int | None = None, limit: int | None = None) -> torch.Tensor:
        """Mean code of the images with an attribute minus that of the images without it, (z,) in [-2, 2].

        `dataset.labels` is (N, A) with `attribute` choosing the column (CelebA's 40 attributes in {0, 1}; nonzero
        = has it), or (N,) class labels where the attribute is `label == attribute` (nonzero if not given).
        """
        if dataset.labels is None:
            raise GenzooError(f"dataset '{dataset.name}' has no labels", "give the data an attributes/labels file")
        labels = dataset.labels
        if labels.dim() == 2:
            if attribute is None or not 0 <= attribute < labels.shape[1]:
                raise GenzooError(f"choose an attribute column 0..{labels.shape[1] - 1}", "pass attribute=<index>")
            labels = labels[:, attribute]
        elif attribute is not None:
            labels = (labels == attribute).long()
        was_training = self.training
        self.eval()
        codes = self.encode_dataset(dataset, limit)
        self.train(was_training)
        has = labels[: len(codes)] > 0
        if has.all() or not has.any():
            raise GenzooError("the attribute is present in all or none of the images", "choose another attribute")
        return codes[has].mean(0) - codes[~has].mean(0)

    @torch.no_grad()
    def change_attribute(
        self, x: torch.Tensor, direction: torch.Tensor, threshold: float = 0.25, remove: bool = False, steps: int = 0
    ) -> torch.Tensor:
        """Set (or with `remove`, clear) an attribute: the code bits where |direction| > threshold are set to
        sign(direction) (or its opposite). Returns the decoded images (N, C, H, W); with `steps` > 0, (N, steps + 2,
        C, H, W) going from the original code to the changed one, the most telling bits flipped first."""
        b = self.encode(x)
        d = direction.to(b.device)
        target = torch.sign(d) * (-1 if remove else 1)
        chosen = d.abs() > threshold
        changed = torch.where(chosen, target, b)
        if steps <= 0:
            return self.decode(changed)
        order = torch.argsort(d.abs(), descending=True)
        t = fractions(steps)
        rows = [torch.cat([c0[None], hamming_codes(c0, c1, t, order), c1[None]]) for c0, c1 in zip(b, changed)]
        codes = torch.stack(rows)
        return self.decode(codes.flatten(0, 1)).unflatten(0, codes.shape[:2])


def fractions(steps: int) -> torch.Tensor:
    """k / (steps - 1) for k < steps, float64: both ends included."""
    return torch.arange(steps, dtype=torch.float64) / max(steps - 1, 1)


def hamming_codes(c0: torch.Tensor, c1: torch.Tensor, t: torch.Tensor, order: torch.Tensor | None = None):
    """Codes (k, z) at fractions t (k,) of the way from c0 to c1: the first round(t * d) of the d differing bits, in
    `order` (default: index order), taken from c1."""
    order = torch.arange(len(c0), device=c0.device) if order is None else order.to(c0.device)
    differ = order[(c0 != c1)[order]]
    out = c0.expand(len(t), -1).clone()
    for k, frac in enumerate(t.tolist()):
        flip = differ[: round(frac * len(differ))]
        out[k, flip] = c1[flip]
    return out
