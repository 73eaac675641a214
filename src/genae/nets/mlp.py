"""Fully connected networks: a generic :class:`MLP` and image-shaped encoder/decoder wrappers.

Plain ``nn.Module``s with no knowledge of any method. Hidden layers are
``Linear -> [BatchNorm1d] -> activation``; the last layer is ``Linear -> out_act``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MLP", "MLPDecoder", "MLPEncoder", "activation"]

ACTIVATIONS = ("relu", "lrelu", "elu", "gelu", "silu", "tanh", "sigmoid", "softplus", "none")


def activation(name: str | None) -> nn.Module:
    """The activation module called ``name`` (one of ``ACTIVATIONS``; ``None`` = identity).

    ``"lrelu"`` is LeakyReLU with slope 0.2 (the DCGAN value).
    """
    if name is None or name == "none":
        return nn.Identity()
    table = {
        "relu": nn.ReLU,
        "lrelu": lambda: nn.LeakyReLU(0.2),
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "softplus": nn.Softplus,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return table[name]()


class MLP(nn.Module):
    """``(B, in_dim) -> (B, out_dim)``.

    hidden: widths of the hidden layers (empty = a single linear layer).
    act: hidden activation; out_act: activation of the output (None = linear output).
    batchnorm: BatchNorm1d after every hidden linear layer (never after the output).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (), act: str = "relu",
                 out_act: str | None = None, batchnorm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation(act))
            d = h
        layers.append(nn.Linear(d, out_dim))
        if out_act is not None:
            layers.append(activation(out_act))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPEncoder(nn.Module):
    """``(B, *shape) -> (B, out_dim)``: flattens the input (images or vectors), then an MLP."""

    def __init__(self, shape: Sequence[int], out_dim: int, hidden: Sequence[int] = (512, 512),
                 act: str = "relu", batchnorm: bool = False):
        super().__init__()
        self.shape = tuple(shape)
        self.mlp = MLP(math.prod(self.shape), out_dim, hidden, act=act, batchnorm=batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.flatten(1))


class MLPDecoder(nn.Module):
    """``(B, latent) -> (B, *shape)``: an MLP whose output is reshaped to ``shape``."""

    def __init__(self, latent: int, shape: Sequence[int], hidden: Sequence[int] = (512, 512),
                 out_act: str | None = None, act: str = "relu", batchnorm: bool = False):
        super().__init__()
        self.shape = tuple(shape)
        self.mlp = MLP(latent, math.prod(self.shape), hidden, act=act, out_act=out_act,
                       batchnorm=batchnorm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(z).view(z.shape[0], *self.shape)
