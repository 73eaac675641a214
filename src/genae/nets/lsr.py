"""LSR-GAN's networks ("Imagining the Latent Space of a Variational Auto-Encoder", Table 3).

Our notes give Table 3 as block lists (docs/methods.md; the issue text):

    encoder:   ResBlock down 64 → ResBlock down 128 → ResBlock down 32 → FC 128, BN, ReLU → FC 2·latent
    decoder:   FC 512, BN, ReLU → (32 × 4 × 4) → ResBlock up 128 → ResBlock up 64 → ResBlock up 32
               → BN, ReLU, conv 3×3 → image channels, tanh
    discriminator: DCGAN-style, stride-2 4×4 convolutions (LeakyReLU 0.2, BatchNorm after all but
               the first) down to a 4×4 map (3×3 at 28 pixels), then one convolution to 3 channels
               with a 2×2 output: 3 × 2 × 2 patch logits (sigmoid outputs at 32×32).

The table gives no widths for the discriminator; ours follow the reference code's (32, 64, 128
channels at 32×32, i.e. ``base=32``) and its DCGAN initialisation (weights N(0, 0.02), BatchNorm
scales N(1, 0.02); ``nets.dcgan.dcgan_init``). Neither choice decides stage 2 at CPU scale: with
either discriminator the generator collapses at λ = 1 on a sharp-posterior VAE (docs/results.md,
issue 29).

Residual blocks are genae's SNGAN blocks (``nets.resnet``) without spectral normalisation: the
encoder's first block is the ``OptimizedDownBlock``, the others ``DownBlock`` / ``UpBlock``. The
latent is 128 in the paper. At 32×32 the encoder's map is 32 × 4 × 4 = 512 features, matching the
decoder's FC 512. The grey 28×28 variant zero-pads the input to 32×32 in the encoder and crops the
decoder's 32×32 output to its centre 28×28 (our choice: the table is for 32×32 CIFAR-10).
Discriminator sizes: 28 → 14 → 7 → 3 (kernel 2 to 2×2), 32 → 16 → 8 → 4 (kernel 3), 64 → … → 4.
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
    Initialised as DCGAN (the reference code's ``weights_init``).
    """

    def __init__(self, shape: Sequence[int], base: int = 32):
        super().__init__()
        c, side, _ = shape
        if len(shape) != 3 or shape[1] != shape[2] or side not in (28, 32, 64):
            raise ValueError(f"the patch discriminator takes 28, 32 or 64 pixel square images, got {tuple(shape)}")
        layers: list[nn.Module] = []
        ch_in, ch, i = c, base, 0
        while side > 4:
            layers.append(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            side, ch_in, ch, i = side // 2, ch, ch * 2, i + 1
        layers.append(nn.Conv2d(ch_in, 3, side - 1, 1, 0))       # -> 3 × 2 × 2
        self.net = dcgan_init(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
