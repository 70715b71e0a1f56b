"""Layers shared by the architectures."""

from __future__ import annotations

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
