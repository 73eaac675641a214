"""The SNGAN/ResNet family (Miyato et al. 2018, after Gulrajani et al. 2017): up-sampling generator
blocks, down-sampling discriminator blocks, the two stacks built from them, and the SNGAN layer plans
at 32, 48 and 128 pixels (``SNGAN_PLANS``) with their role builders.

Plain ``nn.Module``s with no knowledge of any method; which channel widths and block counts a paper
uses is a named preset of :mod:`genae.nets`.

- :class:`UpBlock` (generator): residual ``BN → ReLU → [nearest ×2] → conv3×3 → BN → ReLU → conv3×3``,
  shortcut ``[nearest ×2] → conv1×1`` when the block up-samples or changes the channel count, else the
  identity. Hidden channels default to ``out_ch``.
- :class:`DownBlock` (discriminator): residual ``ReLU → conv3×3 → ReLU → conv3×3 → [avgpool 2]``,
  shortcut ``conv1×1 → [avgpool 2]`` when the block down-samples or changes the channel count, else
  the identity. Hidden channels default to ``in_ch``.
- :class:`OptimizedDownBlock`: the first discriminator block, applied to raw images (no leading
  ReLU): residual ``conv3×3 → ReLU → conv3×3 → avgpool 2``, shortcut ``avgpool 2 → conv1×1``.
- :class:`ResNetDecoder`: ``linear → (bottom × bottom) map → UpBlocks → BN → ReLU → conv3×3 → out_act``.
- :class:`ResNetEncoder` (encoder; with ``dim = 1`` the discriminator):
  ``OptimizedDownBlock → DownBlocks → ReLU → global sum pooling → linear``;
  ``forward(x, return_features=True)`` gives ``(output, features)``, ``features`` ``(B, n_features)``
  the pooled vector the linear layer reads.

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

The SNGAN plans (``SNGAN_PLANS``; presets ``sngan32/48/128`` and CTRL's ``ctrl-resnet32/48/128``,
CTRL paper Tables 6–7 (CIFAR-10, 32×32), 8–9 (STL-10, 48×48) and 10–11 (CelebA, LSUN, ImageNet at
128×128)). "up c" is an up-sampling block to c channels, "down c" a down-sampling block, "res c" a
block that keeps the size; ``w`` is the width::

    32  (w = 128)  g: linear d → 4×4×2w, up 2w, up 2w, up 2w
                   f: down w, down w, res w, res w
    48  (w = 64)   g: linear d → 6×6×8w, up 4w, up 2w, up w
                   f: down w, down 2w, down 4w, down 8w, res 16w
    128 (w = 64)   g: linear d → 4×4×16w, up 16w, up 8w, up 4w, up 2w, up w
                   f: down w, down 2w, down 4w, down 8w, down 16w, res 16w

every g (:func:`sngan_generator`) then ``BN → ReLU → conv 3×3 → C → Tanh``; every f
(:func:`sngan_discriminator`) then ``ReLU → global sum pooling → linear → d`` (CTRL's encoders then
L2-normalise), with spectral normalisation on every convolution and linear layer of f (none in g,
which has BatchNorm). With the default widths these are the papers' channel counts (32: g 256,
f 128; 48: g 512 → 64, f 64 → 1024; 128: g 1024 → 64, f 64 → 1024).

What was checked for CTRL (the paper's appendix tables themselves could not be read here): the layer
lists against the official code (github Delay-Xili/LDR, ``mcrgan/models/__init__.py``: ``get_models``
for STL-10 and the 128×128 sets, which use torch_mimicry's ``SNGANGenerator48/128`` and
``SNGANDiscriminator48/128`` with width 1024 and the output layer replaced by ``SNLinear(ndf, 128)`` +
normalisation) and against torch_mimicry's SNGAN 32/48/128 networks and residual blocks, which follow
the SNGAN paper's tables. Once, outside the test-suite (torch_mimicry is no dependency): the three
CTRL ResNet pairs have exactly torch_mimicry's parameter shapes and counts (its discriminator head
widened to 128), and each residual block gives torch_mimicry's output for the same weights once its
bilinear up-sampling and in-place ReLU are matched (see above). Further differences: any channel
count C (the reference hard-codes 3); the final linear layer of the encoders is Xavier-initialised
like SNGAN's (the CTRL reference replaces it and keeps PyTorch's default initialisation); the CTRL
reference's CIFAR-10 config selects a smaller DCGAN-like network ("mini_dcgan") by default,
``ctrl-resnet32`` is the SNGAN network of Tables 6–7 (its ``mimicry_sngan`` option).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .mlp import activation

__all__ = ["SNGAN_PLANS", "DownBlock", "OptimizedDownBlock", "ResNetDecoder", "ResNetEncoder", "UpBlock",
           "sn", "sngan_discriminator", "sngan_generator", "spectral_normalize"]


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """``module`` with spectral normalisation on its ``weight`` (unchanged when ``enabled`` is False)."""
    return _spectral_norm(module) if enabled else module


def spectral_normalize(module: nn.Module) -> nn.Module:
    """``module`` (in place) with spectral normalisation on every convolution and linear layer."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            sn(m)
    return module


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
    ``return_features=True``: ``(output, features)``, features ``(B, n_features)`` the pooled vector.
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
        self.n_features = blocks[-1][0]
        fc = nn.Linear(blocks[-1][0], out_dim)
        nn.init.xavier_uniform_(fc.weight, 1.0)
        self.fc = sn(fc, spectral_norm)

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return (self.fc(h), h) if return_features else self.fc(h)


# --- the SNGAN plans and their role builders -----------------------------------------------------

# image side -> (side of the map the generator's linear layer makes, generator channels as multiples
# of the width (the map's, then one per up-sampling block), discriminator (multiple of the width,
# down-samples) per block); see the module docstring
SNGAN_PLANS: dict[int, tuple[int, tuple[int, ...], tuple[tuple[int, bool], ...]]] = {
    32: (4, (2, 2, 2, 2), ((1, True), (1, True), (1, False), (1, False))),
    48: (6, (8, 4, 2, 1), ((1, True), (2, True), (4, True), (8, True), (16, False))),
    128: (4, (16, 16, 8, 4, 2, 1), ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False))),
}


def sngan_generator(shape: Sequence[int], dim: int, width: int) -> ResNetDecoder:
    """SNGAN generator ``(B, dim) -> (B, C, S, S)`` in [-1, 1], S one of ``SNGAN_PLANS``."""
    bottom, channels, _ = _plan(shape)
    return ResNetDecoder(dim, shape, [m * width for m in channels], bottom, out_act="tanh")


def sngan_discriminator(shape: Sequence[int], dim: int, width: int) -> ResNetEncoder:
    """SNGAN discriminator ``(B, C, S, S) -> (B, dim)``, spectrally normalised (an encoder when dim > 1)."""
    _, _, blocks = _plan(shape)
    return ResNetEncoder(shape, [(m * width, down) for m, down in blocks], dim, spectral_norm=True)


def _plan(shape: Sequence[int]) -> tuple[int, tuple[int, ...], tuple[tuple[int, bool], ...]]:
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in SNGAN_PLANS:
        raise ValueError(f"the SNGAN networks take C×S×S images with S in {sorted(SNGAN_PLANS)}, "
                         f"got {tuple(shape)}")
    return SNGAN_PLANS[shape[1]]
