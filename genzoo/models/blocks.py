"""Layers shared by the architectures."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True)}


def mlp(sizes: list[int], activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes; activation (+ dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (Karras et al.; ALAE's `lreq.Linear`).

    Weights are stored as N(0, 1/lr_mult) and scaled at run time by gain * lr_mult / sqrt(fan_in); the bias is
    stored zero-initialised and scaled by lr_mult. With Adam (which normalises each parameter's step) this gives
    every layer the same effective step relative to its weights' scale, and lr_mult < 1 slows a layer down by that
    factor (ALAE's mapping network F uses 0.1) without a separate optimiser.
    """

    def __init__(self, in_features: int, out_features: int, lr_mult: float = 1.0, gain: float = 2**0.5):
        super().__init__()
        self.in_features, self.out_features, self.lr_mult = in_features, out_features, lr_mult
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain * lr_mult / math.sqrt(in_features)

    def forward(self, x):
        return nn.functional.linear(
            x, self.weight * self.scale, self.bias if self.lr_mult == 1 else self.bias * self.lr_mult
        )

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, lr_mult={self.lr_mult}"


class EqualConv2d(nn.Module):
    """2-D convolution with equalised learning rate (ALAE's `lreq.Conv2d`), as EqualLinear with fan-in
    in_channels * k * k; 'same' padding.

    `resample="down"` is the convolution followed by 2x2 average pooling, `"up"` 2x nearest upsampling followed by
    the convolution. With `fused` each runs as one stride-2 (transposed) convolution whose (k+1)x(k+1) kernel is the
    k x k kernel summed over the four 2x2 shifts (averaged for "down"): the same function, up to rounding, at
    4/9 of the multiply-adds for k = 3 (ALAE's `transform_kernel`, which it uses from 128x128 up).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        lr_mult: float = 1.0,
        gain: float = 2**0.5,
        bias: bool = True,
        resample: str | None = None,
        fused: bool = False,
    ):
        super().__init__()
        if resample not in (None, "up", "down"):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.lr_mult, self.resample, self.fused = lr_mult, resample, fused and resample is not None
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mult)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain * lr_mult / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x):
        w, pad = self.weight * self.scale, self.kernel_size // 2
        b = None if self.bias is None else self.bias if self.lr_mult == 1 else self.bias * self.lr_mult
        if self.resample == "up":
            if self.fused:  # a transposed convolution takes (in, out, k, k) and correlates with the flipped kernel
                return F.conv_transpose2d(x, _shift_sum(w.transpose(0, 1).flip(2, 3)), b, stride=2, padding=pad)
            x = F.interpolate(x, scale_factor=2)
        elif self.resample == "down" and self.fused:
            return F.conv2d(x, _shift_sum(w) * 0.25, b, stride=2, padding=pad)
        x = F.conv2d(x, w, b, padding=pad)
        return F.avg_pool2d(x, 2) if self.resample == "down" else x

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, lr_mult={self.lr_mult}, "
            f"resample={self.resample}, fused={self.fused}"
        )


def _shift_sum(w: torch.Tensor) -> torch.Tensor:
    """(.., k, k) kernel -> (.., k+1, k+1): the sum of its four copies shifted by 0 or 1 pixel each way."""
    w = F.pad(w, [1, 1, 1, 1])
    return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]


# -- the ALAE family's blocks ------------------------------------------------------------------------------
SLOPE = 0.2


class PixelNorm(nn.Module):
    def forward(self, z):
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class LeakyReLU(nn.Module):
    def forward(self, x):
        return F.leaky_relu(x, SLOPE)


def equal_mlp(
    sizes: list[int], lr_mult: float = 1.0, activate_last: bool = False, activation: bool = True
) -> nn.Sequential:
    """Equalised-lr linear layers with leaky ReLU between them (and after the last one with activate_last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(EqualLinear(a, b, lr_mult=lr_mult))
        if activation and (i < len(sizes) - 2 or activate_last):
            layers.append(LeakyReLU())
    return nn.Sequential(*layers)
