"""Network shapes and the factories' error messages."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

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


def test_recalibrate_batchnorm_is_the_average_of_batch_statistics():
    from genae.nets import recalibrate_batchnorm
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.BatchNorm1d(4))
    net.eval()
    for _ in range(3):  # running statistics of some other data, in training mode
        net.train()(torch.randn(16, 5) * 3 + 2)
    net.eval()
    batches = [torch.randn(32, 5) for _ in range(4)]
    recalibrate_batchnorm(net, batches)
    assert not net.training and not any(m.training for m in net.modules())
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.BatchNorm1d))
    h = [net[0](b).detach().double().numpy() for b in batches]
    np.testing.assert_allclose(net[1].running_mean.numpy(), np.mean([a.mean(0) for a in h], 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net[1].running_var.numpy(), np.mean([a.var(0, ddof=1) for a in h], 0), rtol=1e-5)
    # the second layer's input is the first one normalised with batch statistics, as in training
    g = [np.maximum((a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5) * net[1].weight.detach().numpy()
                    + net[1].bias.detach().numpy(), 0) for a in h]
    np.testing.assert_allclose(net[3].running_mean.numpy(), np.mean([a.mean(0) for a in g], 0), rtol=1e-4, atol=1e-5)
    recalibrate_batchnorm(nn.Linear(2, 2), [torch.randn(3, 2)])  # no BatchNorm: nothing to do


def test_ctrl_fit_prior_gives_eval_features_of_training_mode():
    """After fit_prior on x, eval-mode f(x) equals training-mode f(x) (up to n/(n-1) in the
    variance), whatever statistics the fake batches left in the BN buffers."""
    from genae.methods import METHODS, DataInfo
    spec = METHODS["ctrl-multi"]
    torch.manual_seed(0)
    m = spec.build(spec.config(arch="mlp", width=32, feature_dim=8), DataInfo((1, 28, 28), 10, "image"))
    x, y = torch.rand(400, 1, 28, 28) * 2 - 1, torch.arange(400) % 10
    m.train()
    with torch.no_grad():
        m.encoder(torch.randn(64, 1, 28, 28) * 0.01)  # "transcriptions": other statistics
        train_feats = m.encoder(x)
        m.eval()
        m.fit_prior(x, y)
        eval_feats = m.encoder(x)
    torch.testing.assert_close(eval_feats, train_feats, atol=5e-3, rtol=0)
