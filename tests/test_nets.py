"""Network shapes, the factories' error messages, the named presets and discriminator features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genae.errors import ConfigError
from genae.nets import (PRESETS, ROLES, MLP, DCGANEncoder, ResNetEncoder, activation, build_decoder,
                        build_discriminator, build_encoder, build_preset)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


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


# --- discriminators return (logits, features) ----------------------------------------------------

def check_features(net: nn.Module, x: torch.Tensor, out_dim: int, n_features: int) -> None:
    """forward(x, return_features=True) = (the plain forward's logits, (B, n_features) features)."""
    net.eval()  # BatchNorm with running statistics: the two passes see the same function
    logits = net(x)
    got, feats = net(x, return_features=True)
    assert logits.shape == (x.shape[0], out_dim)
    assert feats.shape == (x.shape[0], n_features) and net.n_features == n_features
    torch.testing.assert_close(got, logits, rtol=0, atol=0)


@pytest.mark.parametrize("batchnorm", [True, False])
def test_discriminator_features(batchnorm):
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28)
    d = build_discriminator("mlp", (1, 28, 28), width=16, batchnorm=batchnorm)
    check_features(d, x, 1, 16)
    _, h = d(x, return_features=True)
    torch.testing.assert_close(d.mlp.net[-1](h), d(x))  # the features are what the output layer reads
    d = build_discriminator("conv", (1, 28, 28), width=4, batchnorm=batchnorm)
    assert isinstance(d, DCGANEncoder)
    check_features(d, x, 1, 8 * 7 * 7)  # 2·width channels on the 7×7 map
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == batchnorm
    assert all(m.bias is not None for m in d.modules() if isinstance(m, nn.Conv2d)) == (not batchnorm)
    check_features(build_discriminator("conv", (3, 64, 64), width=2, out_dim=5), torch.rand(2, 3, 64, 64),
                   5, 16 * 4 * 4)


def test_mlp_and_resnet_features():
    torch.manual_seed(0)
    m = MLP(5, 2, (7, 3), out_act="sigmoid")
    check_features(m, torch.randn(4, 5), 2, 3)
    check_features(MLP(5, 2), torch.randn(4, 5), 2, 5)  # no hidden layer: the input itself
    r = ResNetEncoder((3, 16, 16), [(4, True), (6, True), (6, False)], 1)
    check_features(r, torch.randn(2, 3, 16, 16), 1, 6)


def test_conv_encoder_keeps_its_layers_by_default():
    enc = build_encoder("conv", (3, 32, 32), 6, width=4)
    convs = [m for m in enc.features if isinstance(m, nn.Conv2d)]
    assert [m.bias is not None for m in convs] == [True, False, False]


# --- named presets -------------------------------------------------------------------------------

def preset_shape(name: str) -> tuple[int, ...]:
    side = PRESETS[name].side
    return (1, 28, 28) if side is None else (3, side, side)


def small_width(name: str) -> int:
    return {"mlp": 8, "dcgan": 4, "resnet": 2}[PRESETS[name].family]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_every_role_it_declares(name):
    p = PRESETS[name]
    assert p.family in ("mlp", "dcgan", "resnet") and p.source and set(p.roles) <= set(ROLES)
    shape, dim, batch, w = preset_shape(name), 6, 2, small_width(name)
    torch.manual_seed(0)
    for role in p.roles:
        reads = (dim,) if role == "latent-critic" else shape  # a latent critic reads codes
        net = build_preset(name, role, reads, dim, w)
        if role in ("decoder", "generator"):
            out = net(torch.randn(batch, dim))
            assert out.shape == (batch, *shape), role
        elif role == "encoder":
            assert net(torch.rand(batch, *shape)).shape == (batch, dim), role
        elif role == "patch-discriminator":   # LSR-GAN Table 3: (3, 2, 2) patch logits of 32×32 images
            assert net(torch.rand(batch, *shape)).shape == (batch, 3, 2, 2), role
        else:  # discriminators and critics: logits, and the features alongside
            x = torch.randn(batch, dim) if role == "latent-critic" else torch.rand(batch, *shape)
            check_features(net, x, dim, net.n_features)
            one = build_preset(name, role, reads, width=w)
            assert one.eval()(x).shape == (batch, 1)  # dim defaults to 1 for discriminators


def test_preset_defaults_and_parameter_counts():
    # SNGAN 32×32 at the paper's widths (w = 128, latent 128): the generator is CTRL's resnet32
    # decoder (torch_mimicry's count); the discriminator, counted by hand from the layer list:
    # optimised block 3→128 (3·128·9+128 + 128·128·9+128 + 3·128+128), a down block 128→128 with
    # a 1×1 shortcut, two blocks without, linear 128→1.
    conv3 = 128 * 128 * 9 + 128
    disc = (3 * 128 * 9 + 128 + conv3 + 3 * 128 + 128) + (2 * conv3 + 128 * 128 + 128) + 4 * conv3 + 129
    assert disc == 1_053_825
    assert n_params(build_preset("sngan32", "discriminator", (3, 32, 32))) == disc
    assert n_params(build_preset("sngan32", "generator", (3, 32, 32))) == 4_276_739
    # MaskAAE's MNIST networks: E, G and H of 4 hidden layers of 1024 ReLU units, m = 64
    hidden = 3 * (1024 * 1024 + 1024)
    counts = {"encoder": 784 * 1024 + 1024 + hidden + 1024 * 64 + 64,
              "decoder": 64 * 1024 + 1024 + hidden + 1024 * 784 + 784,
              "latent-critic": 64 * 1024 + 1024 + hidden + 1024 + 1}
    for role, want in counts.items():
        net = build_preset("maskaae-mnist", role, (64,) if role == "latent-critic" else (1, 28, 28))
        assert n_params(net) == want, role


def test_maskaae_preset_is_the_methods_default_mnist_networks():
    from genae.methods import METHODS, DataInfo
    spec = METHODS["maskaae"]
    m = spec.build(spec.config(latent_dim=64, hidden=1024, depth=4, critic_hidden=1024, recon="bce"),
                   DataInfo((1, 28, 28), 10, "image"))
    for role, net in (("encoder", m.encoder), ("decoder", m.decoder), ("latent-critic", m.critic)):
        p = build_preset("maskaae-mnist", role, (64,) if role == "latent-critic" else (1, 28, 28))
        want = {k: v.shape for k, v in net.state_dict().items()}
        assert {k: v.shape for k, v in p.state_dict().items()} == want, role


def test_build_preset_errors():
    with pytest.raises(ConfigError, match=r"unknown network preset 'nope'.*ctrl-dcgan32"):
        build_preset("nope", "encoder", (1, 32, 32))
    with pytest.raises(ConfigError, match=r"'ctrl-dcgan32' has no 'discriminator' network; "
                                          r"roles: encoder, decoder"):
        build_preset("ctrl-dcgan32", "discriminator", (1, 32, 32))
    with pytest.raises(ConfigError, match=r"cannot take data of shape \(1, 28, 28\); "
                                          r"it takes C×32×32 images"):
        build_preset("sngan32", "generator", (1, 28, 28))
    with pytest.raises(ConfigError, match=r"width must be a positive integer"):
        build_preset("ctrl-mlp", "encoder", (4,), 3, width=0)
    with pytest.raises(ConfigError, match=r"dim must be a positive integer"):
        build_preset("ctrl-mlp", "encoder", (4,), True)


def test_imae_and_lsrgan_build_their_networks_from_the_presets():
    """One preset mechanism (issue 43): imae's ``model.net=imae-table*`` and lsr-gan's
    ``model.net=resnet`` are the ``PRESETS`` entries, layer for layer."""
    from genae.methods import METHODS, DataInfo

    info = DataInfo((1, 28, 28), 10, "image", 1000)
    for name, cfg, preset, roles in (("imae", dict(net="imae-table1"), "imae-table1", {"encoder": 30, "decoder": 20}),
                                     ("lsr-gan", dict(net="resnet", latent_dim=16), "lsr-table3",
                                      {"encoder": 32, "decoder": 16, "generator": 16})):
        spec = METHODS[name]
        method = spec.build(spec.config(**cfg), info)
        for role, dim in roles.items():
            want = build_preset(preset, role, info.shape, dim).state_dict()
            got = getattr(method, role).state_dict()
            assert {k: tuple(v.shape) for k, v in got.items()} == {k: tuple(v.shape) for k, v in want.items()}, role


def test_imae_table2_is_the_papers_dsprites_networks():
    """IMAE appendix G, Table 2: encoder FC 1200, FC 1200, FC 2×1200 (ReLU, no BatchNorm), FC 20 + 3;
    decoder FC 1200 three times, then the 64×64 image. Parameter counts from the layer list."""
    shape, head, code = (1, 64, 64), 2 * 10 + 3, 10 + 3
    enc = build_preset("imae-table2", "encoder", shape, head)
    dec = build_preset("imae-table2", "decoder", shape, code)
    assert n_params(enc) == (4096 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 2400 + 2400) + (2400 * head + head)
    assert n_params(dec) == (code * 1200 + 1200) + 2 * (1200 * 1200 + 1200) + (1200 * 4096 + 4096)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in enc.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in build_preset("imae-table1", "encoder", (1, 28, 28), 30).modules())


def test_infogan_mnist_preset_is_table_1():
    """InfoGAN Table 1 (the official code's "mnist" networks): parameter counts from the layer list
    (biases only where no BatchNorm follows), and D's features are the 1024-unit layer Q reads."""
    d = build_preset("infogan-mnist", "discriminator", (1, 28, 28))
    g = build_preset("infogan-mnist", "generator", (1, 28, 28), 74)
    assert n_params(d) == (16 * 64 + 64) + (64 * 128 * 16 + 2 * 128) + (128 * 49 * 1024 + 2 * 1024) + (1024 + 1)
    assert n_params(g) == (74 * 1024 + 2 * 1024) + (1024 * 6272 + 2 * 6272) + (128 * 64 * 16 + 2 * 64) + (64 * 16 + 1)
    logits, feats = d(torch.rand(3, 1, 28, 28), return_features=True)
    assert logits.shape == (3, 1) and feats.shape == (3, 1024) and d.n_features == 1024
    assert g(torch.randn(3, 74)).shape == (3, 1, 28, 28)
    with pytest.raises(Exception, match="28, 28|cannot take"):
        build_preset("infogan-mnist", "discriminator", (1, 32, 32))
