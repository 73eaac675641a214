"""Multi-bias networks of quotient manifold modeling (QMM; "Deep Quotient Manifold Modeling").

A multi-bias linear layer keeps one weight U (PyTorch's ``(out, in)`` layout: the paper's U with
d_X rows and d_Z columns) and A bias vectors a^(1..A); generator i uses bias a^(i) in every
multi-bias layer, so the A generators share everything but these biases and each one's image is a
"translated" copy of the others' manifold (QMM §3–4). Only fully connected layers are multi-bias;
convolutions, BatchNorm and activations are shared (§6).

:class:`QMMGenerator` is the library's reading of QMM's Table B.1–B.3 generators, whose layer lists
are not in the notes we have (docs/methods.md names the tables only): the InfoGAN / DCGAN-MNIST
pattern the paper's baselines share,

    z → MB-FC(latent → hidden) [BN] ReLU → MB-FC(hidden → C₀·s·s) [BN] ReLU → view C₀×s×s
      → (convT 4×4 s2 p1 [BN] ReLU) × (n − 1) → convT 4×4 s2 p1 → image channels → out_act

with genae's DCGAN plan for the image side (28: s = 7, n = 2; 32: s = 4, n = 3; 64: s = 4, n = 4),
C₀ = base·2^(n−1), hidden = 1024 by default. Both fully connected layers are multi-bias. With
``batchnorm=False`` (Q-β-VAE's decoder: "no BN") every layer has its own bias as usual.
:class:`MultiBiasMLP` is the fully connected counterpart (vector data, toy problems): every layer,
the output layer included, is multi-bias.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import conv_plan
from .mlp import activation

__all__ = ["MultiBiasLinear", "MultiBiasMLP", "QMMGenerator", "build_multibias_generator"]


class MultiBiasLinear(nn.Module):
    """``y = x Uᵀ + a``, one shared weight U ``(out, in)`` and ``num_biases`` biases ``(A, out)``.

    ``forward(x, index=None, bias=None)``: x ``(B, in)``; ``index`` ``(B,)`` int64 picks bias
    a^(index[b]) per example; ``bias`` ``(B, out)`` (or ``(out,)``) gives the biases explicitly
    (deriving a new manifold, QMM eq. 3); exactly one of the two. Equals A ``nn.Linear`` layers
    sharing one weight. Initialisation: ``nn.Linear``'s (U and every bias drawn as its bias).
    """

    def __init__(self, in_features: int, out_features: int, num_biases: int):
        super().__init__()
        if num_biases < 1:
            raise ValueError(f"num_biases must be at least 1, got {num_biases}")
        self.in_features, self.out_features, self.num_biases = in_features, out_features, num_biases
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.biases = nn.Parameter(torch.empty(num_biases, out_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
        nn.init.uniform_(self.biases, -bound, bound)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        if (index is None) == (bias is None):
            raise ValueError("MultiBiasLinear: give exactly one of index (B,) and bias (B, out)")
        b = self.biases[index] if index is not None else bias
        return F.linear(x, self.weight) + b

    def tangential(self, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Uᵀa: the biases' components in the input (latent) coordinates, ``(A, in)`` for the
        learned biases, or ``(B, in)`` for explicit ``bias`` ``(B, out)``."""
        return (self.biases if bias is None else bias) @ self.weight

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, num_biases={self.num_biases}"


class QMMGenerator(nn.Module):
    """``(B, latent)`` codes and bias indices ``(B,)`` -> ``(B, C, H, W)`` (see the module docstring).

    ``forward(z, index=None, biases=None)``: ``index`` picks bias set i per example; ``biases`` is a
    list with one ``(B, out)`` (or ``(out,)``) tensor per multi-bias layer (``self.multibias``),
    used instead. ``multibias``: the multi-bias layers in order, for the regulariser and figures.
    """

    def __init__(self, latent: int, shape: Sequence[int], num_biases: int, base: int = 64, hidden: int = 1024,
                 batchnorm: bool = True, out_act: str | None = "tanh"):
        super().__init__()
        side, n = conv_plan(shape)
        ch = base * 2 ** (n - 1)
        self.map_shape = (ch, side, side)
        self.fc1 = MultiBiasLinear(latent, hidden, num_biases)
        self.fc2 = MultiBiasLinear(hidden, ch * side * side, num_biases)
        self.bn1 = nn.BatchNorm1d(hidden) if batchnorm else nn.Identity()
        self.bn2 = nn.BatchNorm1d(ch * side * side) if batchnorm else nn.Identity()
        layers: list[nn.Module] = []
        for _ in range(n - 1):
            layers.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(ch // 2))
            layers.append(nn.ReLU())
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, shape[0], 4, 2, 1), activation(out_act)]
        self.convs = nn.Sequential(*layers)

    @property
    def multibias(self) -> list[MultiBiasLinear]:
        return [self.fc1, self.fc2]

    def forward(self, z: torch.Tensor, index: torch.Tensor | None = None,
                biases: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        b1, b2 = (None, None) if biases is None else biases
        h = F.relu(self.bn1(self.fc1(z, index, b1)))
        h = F.relu(self.bn2(self.fc2(h, index, b2)))
        return self.convs(h.view(z.shape[0], *self.map_shape))


class MultiBiasMLP(nn.Module):
    """``(B, latent)`` -> ``(B, *shape)``: multi-bias FC layers of ``widths`` (ReLU, optional BN)
    and a multi-bias output layer, then ``out_act``; ``forward`` as :class:`QMMGenerator`'s."""

    def __init__(self, latent: int, shape: Sequence[int], num_biases: int, widths: Sequence[int] = (512, 512),
                 batchnorm: bool = True, out_act: str | None = None):
        super().__init__()
        self.shape = tuple(shape)
        dims = [latent, *widths, math.prod(self.shape)]
        self.layers = nn.ModuleList(MultiBiasLinear(a, b, num_biases) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList((nn.BatchNorm1d(w) if batchnorm else nn.Identity()) for w in widths)
        self.out_act = activation(out_act)

    @property
    def multibias(self) -> list[MultiBiasLinear]:
        return list(self.layers)

    def forward(self, z: torch.Tensor, index: torch.Tensor | None = None,
                biases: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        bs = [None] * len(self.layers) if biases is None else list(biases)
        h = z
        for layer, norm, b in zip(self.layers[:-1], self.norms, bs):
            h = F.relu(norm(layer(h, index, b)))
        h = self.layers[-1](h, index, bs[-1])
        return self.out_act(h).view(z.shape[0], *self.shape)


def build_multibias_generator(kind: str, latent: int, shape: Sequence[int], num_biases: int, width: int,
                              hidden: int = 1024, depth: int = 2, batchnorm: bool = True,
                              out_act: str | None = None) -> QMMGenerator | MultiBiasMLP:
    """``"conv"``: :class:`QMMGenerator` (``width`` = base channels, ``hidden`` = the first FC
    layer's units); ``"mlp"``: :class:`MultiBiasMLP` with ``depth`` layers of ``width`` units."""
    if kind == "conv":
        return QMMGenerator(latent, shape, num_biases, base=width, hidden=hidden, batchnorm=batchnorm,
                            out_act=out_act)
    return MultiBiasMLP(latent, shape, num_biases, (width,) * depth, batchnorm=batchnorm, out_act=out_act)
