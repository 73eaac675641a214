"""The DCGAN family (Radford et al. 2016): convolutional encoders, discriminators and decoders
(generators) for square images.

Generic networks (``model.net = "conv"``; any channel count):

- :class:`DCGANEncoder` (encoder; with ``dim = 1`` the discriminator): stride-2 4×4 convolutions
  (BatchNorm after all but the first, LeakyReLU 0.2), channels ``base, 2·base, 4·base, ...``, down to
  a small feature map, then a linear head. ``batchnorm=False`` drops the BatchNorm layers (and gives
  every convolution a bias): a WGAN-GP critic has none (Gulrajani et al. 2017).
  ``forward(x, return_features=True)`` gives ``(output, features)``, ``features`` the flattened
  feature map ``(B, n_features)`` that the linear head reads.
- :class:`DCGANDecoder` (decoder / generator): the mirror image: a linear layer to the small map
  (BatchNorm + ReLU), stride-2 4×4 transposed convolutions (BatchNorm + ReLU), the last one to the
  image channels without normalisation, then ``out_act``.

  Supported image sides (``CONV_SIZES``): 28 (→ 7×7 map, 2 stride-2 layers), 32 (→ 4×4, 3 layers),
  64 (→ 4×4, 4 layers).

The CTRL paper's MNIST pair (Dai et al. 2022, preset ``ctrl-dcgan32``), paper Tables 4 (decoder) and
5 (encoder), at 32×32; ``w`` is the width (default 64), ``d`` the feature dimension (128 in the
paper), ``C`` the image channels::

    g: z viewed as d×1×1 → convT 4×4 s1 p0 → 4w×4×4,   BN, ReLU
                         → convT 4×4 s2 p1 → 2w×8×8,   BN, ReLU
                         → convT 4×4 s2 p1 → w×16×16,  BN, ReLU
                         → convT 4×4 s2 p1 → C×32×32,  Tanh
    f: x → conv 4×4 s2 p1 → w×16×16,  LeakyReLU(0.2)
         → conv 4×4 s2 p1 → 2w×8×8,   BN, LeakyReLU(0.2)
         → conv 4×4 s2 p1 → 4w×4×4,   BN, LeakyReLU(0.2)
         → conv 4×4 s1 p0 → d×1×1, flatten, L2-normalise

No convolution has a bias (as in the reference code). Initialisation as in the reference code (the
PyTorch DCGAN tutorial's): conv weights N(0, 0.02), BN scales N(1, 0.02), BN shifts 0. The layer
lists were checked against the official code (github Delay-Xili/LDR, ``mcrgan/models/__init__.py``:
``GeneratorMNIST`` / ``DiscriminatorMNIST`` and ``weights_init_mnist_model``); the paper's appendix
tables themselves could not be read here. Difference: any channel count C (the reference hard-codes 1).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .heads import L2Normalize
from .mlp import activation

__all__ = ["CONV_SIZES", "DCGAN32Decoder", "DCGAN32Encoder", "DCGANDecoder", "DCGANEncoder", "InfoGANDiscriminator",
           "InfoGANGenerator", "conv_plan",
           "dcgan32_decoder", "dcgan32_encoder", "dcgan_decoder", "dcgan_encoder", "dcgan_init"]

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
    """``(B, C, H, W) -> (B, out_dim)``; ``base`` = channels of the first convolution.

    batchnorm: BatchNorm after every convolution but the first (False: none, and conv biases).
    ``return_features=True``: ``(output, features)``, features ``(B, n_features)`` the flattened map.
    """

    def __init__(self, shape: Sequence[int], out_dim: int, base: int = 64, batchnorm: bool = True):
        super().__init__()
        side, n = conv_plan(shape)
        layers: list[nn.Module] = []
        ch_in = shape[0]
        for i in range(n):
            ch = base * 2 ** i
            layers.append(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=i == 0 or not batchnorm))
            if i > 0 and batchnorm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            ch_in = ch
        self.features = nn.Sequential(*layers)
        self.n_features = ch_in * side * side
        self.head = nn.Linear(self.n_features, out_dim)

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return (self.head(h), h) if return_features else self.head(h)


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


class DCGAN32Decoder(nn.Module):
    """``(B, latent) -> (B, channels, 32, 32)`` in [-1, 1]: CTRL Table 4 (see the module docstring)."""

    def __init__(self, latent: int = 128, channels: int = 1, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGAN32Encoder(nn.Module):
    """``(B, channels, 32, 32) -> (B, out_dim)`` unit rows: CTRL Table 5 (see the module docstring)."""

    def __init__(self, channels: int = 1, out_dim: int = 128, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, out_dim, 4, 1, 0, bias=False), nn.Flatten(), L2Normalize(),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def dcgan_init(module: nn.Module) -> nn.Module:
    """DCGAN initialisation (Radford et al. 2016), in place: convolution, transposed-convolution and
    linear weights N(0, 0.02), BatchNorm scales N(1, 0.02) and shifts 0 (biases keep PyTorch's)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


# --- role builders: (shape, dim, width, ...) -> nn.Module ------------------------------------------

def dcgan_encoder(shape: Sequence[int], dim: int, width: int, batchnorm: bool = True) -> DCGANEncoder:
    """Encoder / discriminator ``(B, *shape) -> (B, dim)``; ``width`` = base channels."""
    return DCGANEncoder(shape, dim, base=width, batchnorm=batchnorm)


def dcgan_decoder(shape: Sequence[int], dim: int, width: int, out_act: str | None = None) -> DCGANDecoder:
    """Decoder / generator ``(B, dim) -> (B, *shape)``; ``width`` = channels before the last layer."""
    return DCGANDecoder(dim, shape, base=width, out_act=out_act)


def dcgan32_encoder(shape: Sequence[int], dim: int, width: int) -> DCGAN32Encoder:
    """CTRL Table 5: ``(B, C, 32, 32) -> (B, dim)`` rows on the unit sphere."""
    return DCGAN32Encoder(shape[0], dim, width)


def dcgan32_decoder(shape: Sequence[int], dim: int, width: int) -> DCGAN32Decoder:
    """CTRL Table 4: ``(B, dim) -> (B, C, 32, 32)`` in [-1, 1]."""
    return DCGAN32Decoder(dim, shape[0], width)


# --- InfoGAN's MNIST networks (Chen et al. 2016, appendix C.1, Table 1) ---------------------------
# D: conv 64 4×4 s2, LeakyReLU → conv 128 4×4 s2, BN, LeakyReLU → FC 1024, BN, LeakyReLU → FC out
# (Q reads the 1024 features); G: FC 1024, BN, ReLU → FC 7·7·128, BN, ReLU → convT 64 4×4 s2, BN,
# ReLU → convT C 4×4 s2. Checked against the official code (openai/InfoGAN,
# ``infogan/models/regularized_gan.py``, network_type "mnist"); the paper's appendix itself could
# not be read here. 28×28 only (two stride-2 layers from 7×7), any channel count. Biases only where
# no BatchNorm follows (a bias before BatchNorm is cancelled by it). Initialisation N(0, 0.02), BN
# scales N(1, 0.02), as the official ops.

#: LeakyReLU slope of InfoGAN's networks: the official ``custom_ops.leaky_rectify``'s default, 0.01
INFOGAN_LEAK = 0.01


class InfoGANDiscriminator(nn.Module):
    """InfoGAN Table 1's D trunk and output: ``(B, C, 28, 28) -> (B, out_dim)`` logits;
    ``return_features=True`` gives ``(logits, features)``, features ``(B, 1024)`` (Q's input)."""

    def __init__(self, shape: Sequence[int], out_dim: int = 1, width: int = 64, fc: int = 1024):
        super().__init__()
        if tuple(shape[1:]) != (28, 28):
            raise ValueError(f"InfoGAN's MNIST networks take C×28×28 images, got {tuple(shape)}")
        lrelu = lambda: nn.LeakyReLU(INFOGAN_LEAK)  # noqa: E731
        self.trunk = nn.Sequential(
            nn.Conv2d(shape[0], width, 4, 2, 1), lrelu(),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), lrelu(),
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, fc, bias=False), nn.BatchNorm1d(fc), lrelu())
        self.n_features = fc
        self.head = nn.Linear(fc, out_dim)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        h = self.trunk(x)
        return (self.head(h), h) if return_features else self.head(h)


class InfoGANGenerator(nn.Module):
    """InfoGAN Table 1's G: ``(B, latent) -> (B, C, 28, 28)``, then ``out_act``."""

    def __init__(self, latent: int, shape: Sequence[int], width: int = 64, fc: int = 1024,
                 out_act: str | None = None):
        super().__init__()
        if tuple(shape[1:]) != (28, 28):
            raise ValueError(f"InfoGAN's MNIST networks take C×28×28 images, got {tuple(shape)}")
        self.net = nn.Sequential(
            nn.Linear(latent, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU(),
            nn.Linear(fc, 2 * width * 7 * 7, bias=False), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, shape[0], 4, 2, 1))
        self.out = activation(out_act)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(z))
