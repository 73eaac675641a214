"""Network shapes and the factories' error messages."""
from __future__ import annotations

import pytest
import torch

from genae.errors import ConfigError
from genae.nets import MLP, activation, build_decoder, build_encoder


@pytest.mark.parametrize("side", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_shapes(side, channels):
    shape = (channels, side, side)
    enc = build_encoder("conv", shape, 6, width=4)
    dec = build_decoder("conv", 5, shape, width=4, out_act="sigmoid")
    assert enc(torch.rand(2, *shape)).shape == (2, 6)
    out = dec(torch.randn(2, 5))
    assert out.shape == (2, *shape)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (17,)])
def test_mlp_shapes(shape):
    enc = build_encoder("mlp", shape, 6, width=8)
    dec = build_decoder("mlp", 5, shape, width=8, out_act="tanh")
    assert enc(torch.rand(3, *shape)).shape == (3, 6)
    out = dec(torch.randn(3, 5))
    assert out.shape == (3, *shape)
    assert out.abs().max() <= 1


def test_default_widths_and_linear_output():
    dec = build_decoder("conv", 4, (1, 28, 28))  # default 64 base channels, no output activation
    assert dec.fc.out_features == 128 * 7 * 7
    assert (dec(torch.randn(2, 4)) < 0).any()
    assert build_encoder("mlp", (10,), 3).mlp.net[0].out_features == 512


def test_conv_encoder_batchnorm_after_all_but_first():
    enc = build_encoder("conv", (3, 32, 32), 6, width=4)
    kinds = [type(m).__name__ for m in enc.features]
    assert kinds == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
                     "Conv2d", "BatchNorm2d", "LeakyReLU"]


def test_mlp_options():
    m = MLP(4, 2, (8, 8), act="lrelu", out_act="sigmoid", batchnorm=True)
    assert sum(isinstance(x, torch.nn.BatchNorm1d) for x in m.modules()) == 2
    assert m(torch.randn(5, 4)).shape == (5, 2)
    assert MLP(4, 2)(torch.randn(5, 4)).shape == (5, 2)  # no hidden layer: linear map
    with pytest.raises(ValueError, match="relu, lrelu"):
        activation("swishy")


def test_factories_reject_unknown_kind():
    for build in (lambda: build_encoder("resnet", (1, 28, 28), 4), lambda: build_decoder("resnet", 4, (1, 28, 28))):
        with pytest.raises(ConfigError, match=r"model\.net.*mlp, conv"):
            build()


@pytest.mark.parametrize("shape", [(17,), (1, 17, 17), (3, 32, 28)])
def test_factories_reject_conv_on_unsupported_shapes(shape):
    with pytest.raises(ValueError, match=r"model\.net(.|\n)*28×28, 32×32, 64×64"):
        build_encoder("conv", shape, 4)
    with pytest.raises(ValueError, match=r"model\.net(.|\n)*28×28, 32×32, 64×64"):
        build_decoder("conv", 4, shape)
