"""SNGAN-style residual networks (Miyato et al. 2018, after Gulrajani et al. 2017): up-sampling
generator blocks, down-sampling discriminator blocks, and the two stacks built from them.

Plain ``nn.Module``s with no knowledge of any method; which channel widths and block counts a paper
uses is decided by the caller (e.g. ``nets/ctrl.py``).

- :class:`UpBlock` (generator): residual ``BN → ReLU → [nearest ×2] → conv3×3 → BN → ReLU → conv3×3``,
  shortcut ``[nearest ×2] → conv1×1`` when the block up-samples or changes the channel count, else the
  identity. Hidden channels default to ``out_ch``.
- :class:`DownBlock` (discriminator): residual ``ReLU → conv3×3 → ReLU → conv3×3 → [avgpool 2]``,
  shortcut ``conv1×1 → [avgpool 2]`` when the block down-samples or changes the channel count, else
  the identity. Hidden channels default to ``in_ch``.
- :class:`OptimizedDownBlock`: the first discriminator block, applied to raw images (no leading
  ReLU): residual ``conv3×3 → ReLU → conv3×3 → avgpool 2``, shortcut ``avgpool 2 → conv1×1``.
- :class:`ResNetDecoder`: ``linear → (bottom × bottom) map → UpBlocks → BN → ReLU → conv3×3 → out_act``.
- :class:`ResNetEncoder`: ``OptimizedDownBlock → DownBlocks → ReLU → global sum pooling → linear``.

Spectral normalisation (``spectral_norm=True``, the discriminator default) wraps every convolution
and linear weight with ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per
training-mode forward, as in SNGAN).

Initialisation follows the SNGAN reference code (and torch_mimicry): Xavier-uniform with gain √2 for
the 3×3 convolutions of the residual branch, gain 1 for the shortcuts, the input linear layer, the
output convolution and the output linear layer; biases keep PyTorch's default.

Notes on faithfulness (checked against torch_mimicry's ``resblocks.py``, which the CTRL reference
code imports): (1) up-sampling is nearest-neighbour, as in the original Chainer SNGAN code;
torch_mimicry uses bilinear. (2) The discriminator shortcut sees the block's *input*; torch_mimicry
applies an in-place ReLU to the input before the shortcut reads it, so its shortcut effectively sees
``relu(x)``. (3) For nearest up-sampling a 1×1 convolution commutes with the up-sampling, so the
shortcut convolves first and up-samples second (same result, 4× cheaper).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .mlp import activation

__all__ = ["DownBlock", "OptimizedDownBlock", "ResNetDecoder", "ResNetEncoder", "UpBlock", "sn"]


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """``module`` with spectral normalisation on its ``weight`` (unchanged when ``enabled`` is False)."""
    return _spectral_norm(module) if enabled else module


def _conv(in_ch: int, out_ch: int, k: int, gain: float, spectral: bool = False) -> nn.Module:
    conv = nn.Conv2d(in_ch, out_ch, k, 1, k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    return sn(conv, spectral)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class UpBlock(nn.Module):
    """``(B, in_ch, H, W) -> (B, out_ch, 2H, 2W)`` (``H, W`` kept when ``upsample=False``)."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int | None = None, upsample: bool = True):
        super().__init__()
        hidden = out_ch if hidden is None else hidden
        self.upsample = upsample
        self.b1, self.c1 = nn.BatchNorm2d(in_ch), _conv(in_ch, hidden, 3, math.sqrt(2))
        self.b2, self.c2 = nn.BatchNorm2d(hidden), _conv(hidden, out_ch, 3, math.sqrt(2))
        self.c_sc = _conv(in_ch, out_ch, 1, 1.0) if upsample or in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.b1(x))
        if self.upsample:
            h = _up(h)
        h = self.c2(F.relu(self.b2(self.c1(h))))
        s = x if self.c_sc is None else self.c_sc(x)
        return h + (_up(s) if self.upsample else s)


class DownBlock(nn.Module):
    """``(B, in_ch, H, W) -> (B, out_ch, H/2, W/2)`` (``H, W`` kept when ``downsample=False``)."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int | None = None, downsample: bool = True,
                 spectral_norm: bool = True):
        super().__init__()
        hidden = in_ch if hidden is None else hidden
        self.downsample = downsample
        self.c1 = _conv(in_ch, hidden, 3, math.sqrt(2), spectral_norm)
        self.c2 = _conv(hidden, out_ch, 3, math.sqrt(2), spectral_norm)
        learnable = downsample or in_ch != out_ch
        self.c_sc = _conv(in_ch, out_ch, 1, 1.0, spectral_norm) if learnable else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x))))
        s = x if self.c_sc is None else self.c_sc(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class OptimizedDownBlock(nn.Module):
    """First discriminator block: ``(B, in_ch, H, W) -> (B, out_ch, H/2, W/2)``, no leading ReLU."""

    def __init__(self, in_ch: int, out_ch: int, spectral_norm: bool = True):
        super().__init__()
        self.c1 = _conv(in_ch, out_ch, 3, math.sqrt(2), spectral_norm)
        self.c2 = _conv(out_ch, out_ch, 3, math.sqrt(2), spectral_norm)
        self.c_sc = _conv(in_ch, out_ch, 1, 1.0, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class ResNetDecoder(nn.Module):
    """``(B, latent) -> (B, *shape)``: the SNGAN generator.

    channels: ``channels[0]`` is the depth of the ``bottom × bottom`` map made by the input linear
    layer; each further entry adds an up-sampling :class:`UpBlock` to that many channels, so the
    image side is ``bottom · 2**(len(channels) - 1)``. out_act: "tanh" | "sigmoid" | None.
    """

    def __init__(self, latent: int, shape: Sequence[int], channels: Sequence[int], bottom: int,
                 out_act: str | None = "tanh"):
        super().__init__()
        c, h, w = shape
        side = bottom * 2 ** (len(channels) - 1)
        if (h, w) != (side, side):
            raise ValueError(f"bottom {bottom} with {len(channels) - 1} up-sampling blocks makes "
                             f"{side}×{side} images, not {h}×{w}")
        self.map_shape = (channels[0], bottom, bottom)
        self.fc = nn.Linear(latent, channels[0] * bottom * bottom)
        nn.init.xavier_uniform_(self.fc.weight, 1.0)
        self.blocks = nn.Sequential(*(UpBlock(a, b) for a, b in zip(channels[:-1], channels[1:])))
        self.bn = nn.BatchNorm2d(channels[-1])
        self.out = _conv(channels[-1], c, 3, 1.0)
        self.out_act = activation(out_act)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.fc(z).view(z.shape[0], *self.map_shape))
        return self.out_act(self.out(F.relu(self.bn(h))))


class ResNetEncoder(nn.Module):
    """``(B, C, H, W) -> (B, out_dim)``: the SNGAN discriminator body with a linear head.

    blocks: ``(out_channels, downsample)`` per residual block; the first is an
    :class:`OptimizedDownBlock` (it always down-samples, so its flag must be True), the rest are
    :class:`DownBlock`s. Then ReLU, global *sum* pooling and a linear layer to ``out_dim``.
    spectral_norm: wrap every convolution and linear weight (SNGAN).
    """

    def __init__(self, shape: Sequence[int], blocks: Sequence[tuple[int, bool]], out_dim: int,
                 spectral_norm: bool = True):
        super().__init__()
        if not blocks or not blocks[0][1]:
            raise ValueError("the first block of a ResNetEncoder always down-samples")
        c, h, w = shape
        n_down = sum(d for _, d in blocks)
        if h % 2 ** n_down or w % 2 ** n_down:
            raise ValueError(f"{n_down} down-sampling blocks need sides divisible by {2 ** n_down}, "
                             f"got {h}×{w}")
        layers: list[nn.Module] = [OptimizedDownBlock(c, blocks[0][0], spectral_norm)]
        for (a, _), (b, down) in zip(blocks[:-1], blocks[1:]):
            layers.append(DownBlock(a, b, downsample=down, spectral_norm=spectral_norm))
        self.blocks = nn.Sequential(*layers)
        fc = nn.Linear(blocks[-1][0], out_dim)
        nn.init.xavier_uniform_(fc.weight, 1.0)
        self.fc = sn(fc, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.blocks(x)).sum(dim=(2, 3)))
