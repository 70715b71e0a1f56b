"""Layers shared by the architectures."""

from __future__ import annotations

import math

import torch
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

    def __init__(self, in_features: int, out_features: int, lr_mult: float = 1.0, gain: float = 2 ** 0.5):
        super().__init__()
        self.in_features, self.out_features, self.lr_mult = in_features, out_features, lr_mult
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain * lr_mult / math.sqrt(in_features)

    def forward(self, x):
        return nn.functional.linear(x, self.weight * self.scale, self.bias if self.lr_mult == 1 else self.bias * self.lr_mult)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, lr_mult={self.lr_mult}"
