"""LSR-GAN's networks ("Imagining the Latent Space of a Variational Auto-Encoder", Table 3).

Our notes give Table 3 as block lists (docs/methods.md; the issue text):

    encoder:   ResBlock down 64 → ResBlock down 128 → ResBlock down 32 → FC 128, BN, ReLU → FC 2·latent
    decoder:   FC 512, BN, ReLU → (32 × 4 × 4) → ResBlock up 128 → ResBlock up 64 → ResBlock up 32
               → BN, ReLU, conv 3×3 → image channels, tanh
    discriminator: four 4×4, stride-2, padding-1 convolutions without bias (Table 3 and the
               reference code): 32, 64, 128 channels (LeakyReLU 0.2, BatchNorm after all but the
               first), then 3 channels: 3 × 2 × 2 patch logits at 32×32 (the sigmoid is in the loss).

The discriminator's widths (32, 64, 128, then 3) are Table 3's and the reference code's (``base=32``);
its initialisation is the reference code's DCGAN one (weights N(0, 0.02), BatchNorm scales
N(1, 0.02); ``nets.dcgan.dcgan_init``), which the paper does not state.

Not in Table 3, which ends at "ResBlock up 32" and the encoder's "128 FC": the decoder's output
layers (BN, ReLU, a 3×3 convolution to the image's channels, tanh for the [-1, 1] data) and the
encoder's last linear layer to the posterior's mean and log-variance; both are what any such
network needs, shaped as in SNGAN's generator and a Gaussian encoder. The discriminator's sigmoid
is in the loss (``objectives.js_discriminator_loss`` on logits), the same function.

Residual blocks are genae's SNGAN blocks (``nets.resnet``) without spectral normalisation: the
encoder's first block is the ``OptimizedDownBlock``, the others ``DownBlock`` / ``UpBlock``. The
latent is 128 in the paper. At 32×32 the encoder's map is 32 × 4 × 4 = 512 features, matching the
decoder's FC 512. The grey 28×28 variant zero-pads the input to 32×32 in the encoder and crops the decoder's
32×32 output to its centre 28×28 (our choice: the table is for 32×32 CIFAR-10).
The discriminator pads 28×28 to 32×32 the same way, so that Table 3's four layers give their 2×2
patches (32 → 16 → 8 → 4 → 2); at 64×64 (not in the paper) one more stride-2 layer of 256 channels
comes before the last. Until issue 37 the last layer was a bias-carrying convolution of stride 1 that
took the map from 4×4 (3×3 at 28 pixels) to 2×2, and the first convolution had a bias.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import dcgan_init
from .resnet import DownBlock, OptimizedDownBlock, UpBlock

__all__ = ["LSR_SIDES", "LSRDecoder", "LSREncoder", "PatchDiscriminator"]

LSR_SIDES = (28, 32)


def _check(shape: Sequence[int]) -> int:
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in LSR_SIDES:
        raise ValueError(f"LSR-GAN's Table 3 networks take 28×28 or 32×32 images, got {tuple(shape)}")
    return 32 - shape[1]                                       # total padding (0 or 4)


class LSREncoder(nn.Module):
    """``(B, C, S, S) -> (B, 2·latent)`` (mean, log-variance), S = 28 or 32 (Table 3)."""

    def __init__(self, shape: Sequence[int], latent: int = 128):
        super().__init__()
        self.pad = _check(shape) // 2
        self.blocks = nn.Sequential(OptimizedDownBlock(shape[0], 64, spectral_norm=False),
                                    DownBlock(64, 128, spectral_norm=False),
                                    DownBlock(128, 32, spectral_norm=False))
        self.fc = nn.Sequential(nn.Linear(32 * 4 * 4, 128), nn.BatchNorm1d(128), nn.ReLU())
        self.head = nn.Linear(128, 2 * latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        h = F.relu(self.blocks(x)).flatten(1)
        return self.head(self.fc(h))


class LSRDecoder(nn.Module):
    """``(B, latent) -> (B, C, S, S)`` in [-1, 1] (Table 3)."""

    def __init__(self, latent: int, shape: Sequence[int]):
        super().__init__()
        self.crop = _check(shape) // 2
        self.fc = nn.Sequential(nn.Linear(latent, 512), nn.BatchNorm1d(512), nn.ReLU())
        self.blocks = nn.Sequential(UpBlock(32, 128), UpBlock(128, 64), UpBlock(64, 32))
        self.out = nn.Sequential(nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, shape[0], 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.out(self.blocks(self.fc(z).view(z.shape[0], 32, 4, 4)))
        c = self.crop
        return x[:, :, c:x.shape[2] - c, c:x.shape[3] - c] if c else x


class PatchDiscriminator(nn.Module):
    """``(B, C, S, S) -> (B, 3, 2, 2)`` patch logits, S = 28, 32 or 64 (see the module docstring).

    ``base``: channels of the first convolution (doubling per layer; 32 in the reference code).
    Every convolution is 4×4, stride 2, padding 1, without bias (Table 3). Initialised as DCGAN
    (the reference code's ``weights_init``).
    """

    def __init__(self, shape: Sequence[int], base: int = 32):
        super().__init__()
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in (28, 32, 64):
            raise ValueError(f"the patch discriminator takes 28, 32 or 64 pixel square images, got {tuple(shape)}")
        c, side = shape[0], max(shape[1], 32)
        self.pad = (side - shape[1]) // 2                       # 28 -> 32, as the encoder
        layers: list[nn.Module] = []
        ch_in, ch, i = c, base, 0
        while side > 4:                                         # Table 3's rows 1-3 (one more at 64)
            layers.append(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=False))
            if i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            side, ch_in, ch, i = side // 2, ch, ch * 2, i + 1
        layers.append(nn.Conv2d(ch_in, 3, 4, 2, 1, bias=False))   # Table 3's last row: 4 × 4 -> 3 × 2 × 2
        self.net = dcgan_init(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)                       # 28 -> 32 with zeros, as the encoder
        return self.net(x)
