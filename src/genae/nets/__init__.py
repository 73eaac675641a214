"""Networks: plain ``nn.Module``s that know nothing about methods, and two factories.

``build_encoder(kind, shape, out_dim, width, depth)`` / ``build_decoder(kind, latent, shape, width,
out_act, depth)`` pick the family named by a method config's ``model.net``:

- ``"mlp"``: ``depth`` hidden layers (default 2) of ``width`` units (ReLU); images and vectors.
- ``"conv"``: DCGAN-style convolutions with ``width`` base channels; square images of side
  28, 32 or 64, any channel count.

``width=None`` uses ``DEFAULT_WIDTH[kind]``.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..errors import ConfigError
from .batchnorm import recalibrate_batchnorm
from .dcgan import CONV_SIZES, DCGANDecoder, DCGANEncoder, conv_plan
from .mlp import ACTIVATIONS, MLP, MLPDecoder, MLPEncoder, activation

__all__ = ["ACTIVATIONS", "CONV_SIZES", "DEFAULT_WIDTH", "NETS", "DCGANDecoder", "DCGANEncoder",
           "MLP", "MLPDecoder", "MLPEncoder", "activation", "build_decoder", "build_encoder",
           "recalibrate_batchnorm"]

NETS = ("mlp", "conv")
DEFAULT_WIDTH = {"mlp": 512, "conv": 64}  # MLP hidden units / conv base channels


def build_encoder(kind: str, shape: Sequence[int], out_dim: int, width: int | None = None,
                  depth: int = 2) -> nn.Module:
    """``(B, *shape) -> (B, out_dim)`` encoder of family ``kind`` ("mlp" | "conv").

    ``depth``: number of hidden layers of the MLP (the conv family's depth follows the image size).
    """
    width = _check(kind, shape, width, depth)
    if kind == "mlp":
        return MLPEncoder(shape, out_dim, (width,) * depth)
    return DCGANEncoder(shape, out_dim, base=width)


def build_decoder(kind: str, latent: int, shape: Sequence[int], width: int | None = None,
                  out_act: str | None = None, depth: int = 2) -> nn.Module:
    """``(B, latent) -> (B, *shape)`` decoder of family ``kind``; ``out_act`` "sigmoid" | "tanh" | None."""
    width = _check(kind, shape, width, depth)
    if kind == "mlp":
        return MLPDecoder(latent, shape, (width,) * depth, out_act=out_act)
    return DCGANDecoder(latent, shape, base=width, out_act=out_act)


def _check(kind: str, shape: Sequence[int], width: int | None, depth: int) -> int:
    if kind not in NETS:
        raise ConfigError(f"model.net: unknown network family {kind!r}; choose one of {', '.join(NETS)}")
    if kind == "conv":
        try:
            conv_plan(shape)
        except ValueError as e:
            raise ConfigError(f"model.net: 'conv' is not possible here: {e}; use model.net=mlp") from None
    if depth < 1:
        raise ConfigError(f"model.depth must be at least 1, got {depth}")
    width = DEFAULT_WIDTH[kind] if width is None else width
    if width < 1:
        raise ConfigError(f"model.hidden must be a positive width, got {width}")
    return width

from .ctrl import (CTRL_ARCHS, CTRL_DEFAULT_WIDTH, DCGAN32Decoder, DCGAN32Encoder,  # noqa: E402
                   L2Normalize, build_ctrl_nets, ctrl_arch_accepts)
from .resnet import DownBlock, OptimizedDownBlock, ResNetDecoder, ResNetEncoder, UpBlock  # noqa: E402

__all__ += ["CTRL_ARCHS", "CTRL_DEFAULT_WIDTH", "DCGAN32Decoder", "DCGAN32Encoder", "DownBlock",
            "L2Normalize", "OptimizedDownBlock", "ResNetDecoder", "ResNetEncoder", "UpBlock",
            "build_ctrl_nets", "ctrl_arch_accepts"]
