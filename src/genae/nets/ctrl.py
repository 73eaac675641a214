"""The encoder/decoder pairs of CTRL (Dai et al. 2022, "Closed-Loop Data Transcription to an
Low-Dimensional Representation via Minimaxing Rate Reduction") and the factory :func:`build_ctrl_nets`.

Every pair is ``(f, g)``: the encoder ``f: (B, *shape) -> (B, d)`` ends with an L2 normalisation, so
features lie on the unit sphere; the decoder ``g: (B, d) -> (B, *shape)`` ends with tanh (data in
[-1, 1]). ``w`` is ``width``, ``d`` is ``feature_dim`` (128 in the paper), ``C`` the image channels.

``dcgan32`` — paper Tables 4 (decoder) and 5 (encoder), MNIST at 32×32; default w = 64::

    g: z viewed as d×1×1 → convT 4×4 s1 p0 → 4w×4×4,   BN, ReLU
                         → convT 4×4 s2 p1 → 2w×8×8,   BN, ReLU
                         → convT 4×4 s2 p1 → w×16×16,  BN, ReLU
                         → convT 4×4 s2 p1 → C×32×32,  Tanh
    f: x → conv 4×4 s2 p1 → w×16×16,  LeakyReLU(0.2)
         → conv 4×4 s2 p1 → 2w×8×8,   BN, LeakyReLU(0.2)
         → conv 4×4 s2 p1 → 4w×4×4,   BN, LeakyReLU(0.2)
         → conv 4×4 s1 p0 → d×1×1, flatten, L2-normalise

  No convolution has a bias (as in the reference code). Initialisation as in the reference code
  (the PyTorch DCGAN tutorial's): conv weights N(0, 0.02), BN scales N(1, 0.02), BN shifts 0.

``resnet32`` / ``resnet48`` / ``resnet128`` — the SNGAN ResNets (Miyato et al. 2018) of paper Tables
6–7 (CIFAR-10, 32×32), 8–9 (STL-10, 48×48) and 10–11 (CelebA, LSUN, ImageNet at 128×128), built from
the blocks of :mod:`genae.nets.resnet` (see there for the inside of a block). "up c" is an
up-sampling block to c channels, "down c" a down-sampling block, "res c" a block that keeps the size::

    resnet32  (w = 128)  g: linear d → 4×4×2w, up 2w, up 2w, up 2w
                         f: down w, down w, res w, res w
    resnet48  (w = 64)   g: linear d → 6×6×8w, up 4w, up 2w, up w
                         f: down w, down 2w, down 4w, down 8w, res 16w
    resnet128 (w = 64)   g: linear d → 4×4×16w, up 16w, up 8w, up 4w, up 2w, up w
                         f: down w, down 2w, down 4w, down 8w, down 16w, res 16w

  every g then ``BN → ReLU → conv 3×3 → C → Tanh``; every f then ``ReLU → global sum pooling →
  linear → d → L2-normalise``, with spectral normalisation on every convolution and linear layer of f
  (none in g, which has BatchNorm). With the default widths these are the paper's channel counts
  (32: g 256, f 128; 48: g 512 → 64, f 64 → 1024; 128: g 1024 → 64, f 64 → 1024).

``mlp`` — a CPU-sized pair for any data shape (not from the paper; default w = 512):
f = flatten → linear w → BN → ReLU → linear w → BN → ReLU → linear d → L2-normalise;
g = linear w → BN → ReLU → linear w → BN → ReLU → linear prod(shape) → Tanh → reshape.
BN + ReLU in f rather than LeakyReLU(0.2): in two short LDR-Multi runs on 10k Fashion-MNIST images
(batch 500, Adam betas (0.5, 0.999), one seed) it gave the higher objective and nearest-subspace test
accuracy 0.81 against 0.77 (300 steps, lr 1e-3) and 0.81 against 0.73 (800 steps, lr 5e-4).

What was checked, and the differences. The paper's appendix tables themselves could not be read
here; the layer lists were checked against the official code (github Delay-Xili/LDR,
``mcrgan/models/__init__.py``: ``GeneratorMNIST`` / ``DiscriminatorMNIST`` and
``weights_init_mnist_model`` for MNIST; ``get_models`` for STL-10 and the 128×128 sets, which use
torch_mimicry's ``SNGANGenerator48/128`` and ``SNGANDiscriminator48/128`` with width 1024 and the
output layer replaced by ``SNLinear(ndf, 128)`` + normalisation) and against torch_mimicry's SNGAN
32/48/128 networks and residual blocks, which follow the SNGAN paper's tables. Once, outside the
test-suite (torch_mimicry is no dependency): the three ResNet pairs have exactly torch_mimicry's
parameter shapes and counts (its discriminator head widened to 128), and each residual block gives
torch_mimicry's output for the same weights once its bilinear up-sampling and in-place ReLU are
matched (see below). Differences:

- any channel count C (the reference hard-codes 1 channel for MNIST, 3 for the ResNets);
- the ResNet up-sampling is nearest-neighbour (SNGAN's original; torch_mimicry uses bilinear), and
  the encoder's residual shortcut reads the block input, not the ReLU'd input that torch_mimicry's
  in-place ReLU leaves behind (see :mod:`genae.nets.resnet`);
- the final linear layer of the ResNet encoders is Xavier-initialised like SNGAN's (the reference
  replaces it and keeps PyTorch's default initialisation);
- the reference's CIFAR-10 config selects a smaller DCGAN-like network ("mini_dcgan") by default;
  ``resnet32`` is the SNGAN network of Tables 6–7 (its ``mimicry_sngan`` option).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .mlp import MLPDecoder, MLPEncoder
from .resnet import ResNetDecoder, ResNetEncoder

__all__ = ["CTRL_ARCHS", "CTRL_DEFAULT_WIDTH", "DCGAN32Decoder", "DCGAN32Encoder", "L2Normalize",
           "build_ctrl_nets", "ctrl_arch_accepts"]

CTRL_ARCHS = ("dcgan32", "resnet32", "resnet48", "resnet128", "mlp")
# conv base channels (see the table above) / MLP hidden units
CTRL_DEFAULT_WIDTH = {"dcgan32": 64, "resnet32": 128, "resnet48": 64, "resnet128": 64, "mlp": 512}
# image side each convolutional arch takes (any channel count); "mlp" takes any shape
_SIDE = {"dcgan32": 32, "resnet32": 32, "resnet48": 48, "resnet128": 128}


class L2Normalize(nn.Module):
    """Rows onto the unit sphere: ``x / ||x||₂`` along ``dim``."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=self.dim)


class DCGAN32Decoder(nn.Module):
    """``(B, latent) -> (B, channels, 32, 32)`` in [-1, 1]: paper Table 4 (see the module docstring)."""

    def __init__(self, latent: int = 128, channels: int = 1, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh(),
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGAN32Encoder(nn.Module):
    """``(B, channels, 32, 32) -> (B, out_dim)`` unit rows: paper Table 5 (see the module docstring)."""

    def __init__(self, channels: int = 1, out_dim: int = 128, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, out_dim, 4, 1, 0, bias=False), nn.Flatten(), L2Normalize(),
        )
        _dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


Pair = tuple[nn.Module, nn.Module]


def _dcgan32(shape: tuple[int, ...], d: int, w: int) -> Pair:
    return DCGAN32Encoder(shape[0], d, w), DCGAN32Decoder(d, shape[0], w)


def _resnet(bottom: int, decoder: Callable[[int], list[int]],
            encoder: Callable[[int], list[tuple[int, bool]]]) -> Callable[..., Pair]:
    def build(shape: tuple[int, ...], d: int, w: int) -> Pair:
        f = nn.Sequential(ResNetEncoder(shape, encoder(w), d, spectral_norm=True), L2Normalize())
        return f, ResNetDecoder(d, shape, decoder(w), bottom, out_act="tanh")
    return build


def _mlp(shape: tuple[int, ...], d: int, w: int) -> Pair:
    f = nn.Sequential(MLPEncoder(shape, d, (w, w), act="relu", batchnorm=True), L2Normalize())
    g = MLPDecoder(d, shape, (w, w), out_act="tanh", act="relu", batchnorm=True)
    return f, g


_BUILD: dict[str, Callable[[tuple[int, ...], int, int], Pair]] = {
    "dcgan32": _dcgan32,
    # SNGAN tables: decoder channels after the linear layer, encoder (channels, down-sample) per block
    "resnet32": _resnet(4, lambda w: [2 * w] * 4,
                        lambda w: [(w, True), (w, True), (w, False), (w, False)]),
    "resnet48": _resnet(6, lambda w: [8 * w, 4 * w, 2 * w, w],
                        lambda w: [(w, True), (2 * w, True), (4 * w, True), (8 * w, True),
                                   (16 * w, False)]),
    "resnet128": _resnet(4, lambda w: [16 * w, 16 * w, 8 * w, 4 * w, 2 * w, w],
                         lambda w: [(w, True), (2 * w, True), (4 * w, True), (8 * w, True),
                                    (16 * w, True), (16 * w, False)]),
    "mlp": _mlp,
}


def build_ctrl_nets(arch: str, shape: tuple[int, ...], feature_dim: int = 128,
                    width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """(encoder f, decoder g). f: (B, *shape) -> (B, feature_dim) L2-normalised rows (features on the
    unit sphere); g: (B, feature_dim) -> (B, *shape) in [-1, 1] (tanh). Unknown arch / incompatible
    shape -> ConfigError naming `model.arch`, the valid choices and the shapes each arch accepts.

    arch: one of ``CTRL_ARCHS`` (see the module docstring for the layers); ``width=None`` uses
    ``CTRL_DEFAULT_WIDTH[arch]`` (the paper's channel counts).
    """
    shape = _check(arch, shape)
    if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1:
        raise ConfigError(f"model.feature_dim must be a positive integer, got {feature_dim!r}")
    w = CTRL_DEFAULT_WIDTH[arch] if width is None else width
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise ConfigError(f"model.width must be a positive integer (channels or hidden units), got {w!r}")
    return _BUILD[arch](shape, feature_dim, w)


def ctrl_arch_accepts(arch: str, shape: Sequence[int]) -> bool:
    """Whether ``arch`` (one of ``CTRL_ARCHS``) can take data of ``shape`` (without the batch axis)."""
    shape = tuple(shape)
    if arch not in CTRL_ARCHS:
        return False
    if arch == "mlp":
        return len(shape) >= 1 and min(shape) >= 1
    side = _SIDE[arch]
    return len(shape) == 3 and shape[0] >= 1 and shape[1:] == (side, side)


def _choices() -> str:
    return ", ".join(f"{a} ({f'C×{_SIDE[a]}×{_SIDE[a]} images' if a in _SIDE else 'any shape'})"
                     for a in CTRL_ARCHS)


def _check(arch: str, shape: Sequence[int]) -> tuple[int, ...]:
    if arch not in CTRL_ARCHS:
        raise ConfigError(f"model.arch: unknown CTRL network {arch!r}; choose one of {_choices()}")
    shape = tuple(int(s) for s in shape)
    if not ctrl_arch_accepts(arch, shape):
        fits = [a for a in CTRL_ARCHS if ctrl_arch_accepts(a, shape)]
        raise ConfigError(f"model.arch: {arch!r} cannot take data of shape {shape}; "
                          f"networks that can: {', '.join(fits) or 'none'}; "
                          f"choices: {_choices()}")
    return shape

