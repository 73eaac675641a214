"""DCGAN-style convolutional encoder and decoder (Radford et al. 2016) for square images.

Encoder: stride-2 4×4 convolutions (BatchNorm after all but the first, LeakyReLU 0.2), channels
``base, 2·base, 4·base, ...``, down to a small feature map, then a linear head.
Decoder: the mirror image: a linear layer to the small map (BatchNorm + ReLU), stride-2 4×4
transposed convolutions (BatchNorm + ReLU), the last one to the image channels without
normalisation, then ``out_act``.

Supported image sides (``CONV_SIZES``): 28 (→ 7×7 map, 2 stride-2 layers), 32 (→ 4×4, 3 layers),
64 (→ 4×4, 4 layers); any channel count.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .mlp import activation

__all__ = ["CONV_SIZES", "DCGANDecoder", "DCGANEncoder", "conv_plan"]

# image side -> (side of the smallest feature map, number of stride-2 layers)
CONV_SIZES: dict[int, tuple[int, int]] = {28: (7, 2), 32: (4, 3), 64: (4, 4)}


def conv_plan(shape: Sequence[int]) -> tuple[int, int]:
    """``(C, H, W) -> (map side, number of stride-2 layers)``; ValueError for unsupported shapes."""
    sizes = ", ".join(f"{s}×{s}" for s in CONV_SIZES)
    if len(shape) != 3:
        raise ValueError(f"the conv networks need images (C, H, W), got data of shape {tuple(shape)}; "
                         f"supported image sizes: {sizes}")
    _, h, w = shape
    if h != w or h not in CONV_SIZES:
        raise ValueError(f"the conv networks do not support {h}×{w} images; supported sizes: {sizes}")
    return CONV_SIZES[h]


class DCGANEncoder(nn.Module):
    """``(B, C, H, W) -> (B, out_dim)``; ``base`` = channels of the first convolution."""

    def __init__(self, shape: Sequence[int], out_dim: int, base: int = 64):
        super().__init__()
        side, n = conv_plan(shape)
        layers: list[nn.Module] = []
        ch_in = shape[0]
        for i in range(n):
            ch = base * 2 ** i
            layers.append(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            ch_in = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch_in * side * side, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class DCGANDecoder(nn.Module):
    """``(B, latent) -> (B, C, H, W)``; ``base`` = channels before the last transposed conv.

    out_act: "sigmoid" | "tanh" | None (linear output, e.g. Bernoulli logits).
    """

    def __init__(self, latent: int, shape: Sequence[int], base: int = 64, out_act: str | None = None):
        super().__init__()
        side, n = conv_plan(shape)
        ch = base * 2 ** (n - 1)
        self.map_shape = (ch, side, side)
        self.fc = nn.Linear(latent, ch * side * side, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(ch), nn.ReLU()]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2),
                       nn.ReLU()]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, shape[0], 4, 2, 1), activation(out_act)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], *self.map_shape))
