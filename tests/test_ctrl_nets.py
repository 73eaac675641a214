"""CTRL networks (presets ``ctrl-*``: nets/dcgan.py, nets/resnet.py, nets/mlp.py): shapes, features on
the sphere, tanh range, spectral normalisation, parameter counts against the paper's layer lists, and
the factory's errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from genae.errors import ConfigError
from genae.nets import (CTRL_ARCHS, CTRL_DEFAULT_WIDTH, DownBlock, OptimizedDownBlock, UpBlock,
                        build_ctrl_nets, ctrl_arch_accepts)

SIDE = {"dcgan32": 32, "resnet32": 32, "resnet48": 48, "resnet128": 128}
RESNETS = ("resnet32", "resnet48", "resnet128")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def check_pair(f: nn.Module, g: nn.Module, shape: tuple[int, ...], d: int, batch: int = 2) -> None:
    x = torch.rand(batch, *shape) * 2 - 1
    z = f(x)
    assert z.shape == (batch, d)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(batch))
    out = g(F.normalize(torch.randn(batch, d), dim=1))
    assert out.shape == (batch, *shape)
    assert out.abs().max() <= 1
    big = g(100 * torch.randn(batch, d))  # saturating inputs still land in [-1, 1]
    assert big.abs().max() <= 1


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch", ["dcgan32", *RESNETS])
def test_conv_archs_shapes_sphere_and_range(arch, channels):
    shape = (channels, SIDE[arch], SIDE[arch])
    width = None if arch in ("dcgan32", "resnet32") else 4  # the wide ones are checked below
    f, g = build_ctrl_nets(arch, shape, feature_dim=16, width=width)
    check_pair(f, g, shape, 16)


@pytest.fixture(scope="module")
def resnet128():
    torch.manual_seed(0)
    return build_ctrl_nets("resnet128", (3, 128, 128))  # the paper's widths


def test_resnet128_paper_width_forward(resnet128):
    f, g = resnet128
    with torch.no_grad():
        check_pair(f, g, (3, 128, 128), 128, batch=2)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (17,), (2, 5, 7)])
def test_mlp_any_shape(shape):
    f, g = build_ctrl_nets("mlp", shape, feature_dim=8, width=32)
    check_pair(f, g, shape, 8, batch=4)
    assert build_ctrl_nets("mlp", shape)[0][0].mlp.net[0].out_features == 512  # default width
    for net in (f, g):  # two hidden layers, each Linear → BN → ReLU
        mods = list(net.modules())
        assert sum(isinstance(m, nn.BatchNorm1d) for m in mods) == 2
        assert sum(isinstance(m, nn.Linear) for m in mods) == 3


def test_default_feature_dim_and_widths():
    f, g = build_ctrl_nets("dcgan32", (1, 32, 32))
    check_pair(f, g, (1, 32, 32), 128)
    assert set(CTRL_DEFAULT_WIDTH) == set(CTRL_ARCHS)
    assert CTRL_DEFAULT_WIDTH == {"dcgan32": 64, "resnet32": 128, "resnet48": 64, "resnet128": 64,
                                  "mlp": 512}


# -- dcgan32: the layer list of paper Tables 4-5, counted by hand ------------------------------------

def dcgan32_counts_by_hand(C: int, w: int = 64, d: int = 128) -> tuple[int, int]:
    """(encoder, decoder) parameters from the tables: 4×4 kernels, no conv biases, BN = 2 per channel."""
    k = 4 * 4
    decoder = (k * d * (4 * w) + 2 * (4 * w)      # 1×1×d -> 4×4×4w, BN
               + k * (4 * w) * (2 * w) + 2 * (2 * w)  # -> 8×8×2w, BN
               + k * (2 * w) * w + 2 * w          # -> 16×16×w, BN
               + k * w * C)                       # -> 32×32×C, Tanh
    encoder = (k * C * w                          # 32×32×C -> 16×16×w, LReLU
               + k * w * (2 * w) + 2 * (2 * w)    # -> 8×8×2w, BN
               + k * (2 * w) * (4 * w) + 2 * (4 * w)  # -> 4×4×4w, BN
               + k * (4 * w) * d)                 # 4×4 conv s1 -> 1×1×d
    return encoder, decoder


def test_dcgan32_parameter_counts_match_paper_tables():
    assert dcgan32_counts_by_hand(1) == (1_181_440, 1_181_568)  # MNIST: 1×32×32, d = 128
    for C, w, d in [(1, 64, 128), (3, 64, 128), (1, 16, 32)]:
        f, g = build_ctrl_nets("dcgan32", (C, 32, 32), feature_dim=d, width=w)
        assert (n_params(f), n_params(g)) == dcgan32_counts_by_hand(C, w, d)


def test_dcgan32_layer_lists_and_init():
    torch.manual_seed(0)
    f, g = build_ctrl_nets("dcgan32", (1, 32, 32))
    convs = [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
              m.bias is None) for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs == [("ConvTranspose2d", 128, 256, (4, 4), (1, 1), (0, 0), True),
                     ("ConvTranspose2d", 256, 128, (4, 4), (2, 2), (1, 1), True),
                     ("ConvTranspose2d", 128, 64, (4, 4), (2, 2), (1, 1), True),
                     ("ConvTranspose2d", 64, 1, (4, 4), (2, 2), (1, 1), True)]
    kinds = [type(m).__name__ for m in g.net]
    assert kinds == ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 3 + ["ConvTranspose2d", "Tanh"]
    convs = [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.bias is None)
             for m in f.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(1, 64, (4, 4), (2, 2), (1, 1), True), (64, 128, (4, 4), (2, 2), (1, 1), True),
                     (128, 256, (4, 4), (2, 2), (1, 1), True), (256, 128, (4, 4), (1, 1), (0, 0), True)]
    kinds = [type(m).__name__ for m in f.net]
    assert kinds == (["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 2
                     + ["Conv2d", "Flatten", "L2Normalize"])
    assert all(m.negative_slope == 0.2 for m in f.modules() if isinstance(m, nn.LeakyReLU))
    # DCGAN initialisation: conv weights N(0, 0.02), BN scale N(1, 0.02), BN shift 0
    w = torch.cat([m.weight.flatten() for m in [*f.modules(), *g.modules()]
                   if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.std().item() - 0.02) < 1e-3 and abs(w.mean().item()) < 1e-3
    bns = [m for m in [*f.modules(), *g.modules()] if isinstance(m, nn.BatchNorm2d)]
    assert all(m.bias.abs().max() == 0 and (m.weight - 1).abs().max() < 0.15 for m in bns)


# -- the SNGAN ResNets ----------------------------------------------------------------------------

def weight_layers(m: nn.Module) -> list[nn.Module]:
    return [x for x in m.modules() if isinstance(x, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def test_resnet_parameter_counts_match_sngan_reference(resnet128):
    # Counted with torch_mimicry's SNGAN{Generator,Discriminator}{32,48,128} (the networks the CTRL
    # reference code uses), their output layer replaced by a linear layer to 128 as in the reference.
    expected = {"resnet32": (1_070_208, 4_276_739), "resnet48": (10_271_616, 4_878_083),
                "resnet128": (29_148_032, 32_150_787)}
    for arch in RESNETS:
        f, g = resnet128 if arch == "resnet128" else build_ctrl_nets(arch, (3, SIDE[arch], SIDE[arch]))
        assert (n_params(f), n_params(g)) == expected[arch], arch


@pytest.mark.parametrize("arch", RESNETS)
def test_resnet_encoders_spectrally_normalised_everywhere(arch, resnet128):
    shape = (3, SIDE[arch], SIDE[arch])
    f, g = resnet128 if arch == "resnet128" else build_ctrl_nets(arch, shape)
    layers = weight_layers(f)
    n_blocks = {"resnet32": 4, "resnet48": 5, "resnet128": 6}[arch]
    # 3 convs per block, less the 1×1 shortcut of blocks that keep channels and size, + the linear head
    n_identity = {"resnet32": 2, "resnet48": 0, "resnet128": 1}[arch]
    assert len(layers) == 3 * n_blocks - n_identity + 1
    for m in layers:
        assert parametrize.is_parametrized(m, "weight")
        assert "SpectralNorm" in type(m.parametrizations.weight[0]).__name__
    assert not any(isinstance(m, nn.BatchNorm2d) for m in f.modules())
    assert not any(parametrize.is_parametrized(m) for m in g.modules())  # decoder: BN, no SN


@pytest.mark.parametrize("arch", RESNETS)
def test_spectral_norm_makes_largest_singular_value_one(arch):
    torch.manual_seed(0)
    shape = (1, SIDE[arch], SIDE[arch])
    f, _ = build_ctrl_nets(arch, shape, feature_dim=16, width=4)  # narrow: power iteration converges fast
    f.train()
    with torch.no_grad():
        for _ in range(3):  # every training-mode forward runs one power iteration per weight
            f(torch.randn(2, *shape))
        layers = weight_layers(f)
        for m in layers:
            # σ_est ≤ σ, so W/σ_est never has a norm below 1; it approaches 1 from above
            assert torch.linalg.matrix_norm(m.weight.flatten(1), 2) >= 1 - 1e-4
        for _ in range(100):  # each training-mode read of .weight is one more power iteration
            for m in layers:
                m.weight
        for m in layers:
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), 2).item()
            assert abs(sigma - 1) < 5e-3, (arch, sigma)


def test_resnet_layer_plan_paper_widths():
    f, g = build_ctrl_nets("resnet48", (3, 48, 48))
    enc = f[0]
    outs = [b.c2.out_channels for b in enc.blocks]
    downs = [getattr(b, "downsample", True) for b in enc.blocks]
    assert outs == [64, 128, 256, 512, 1024] and downs == [True, True, True, True, False]
    assert isinstance(enc.blocks[0], OptimizedDownBlock)
    assert g.map_shape == (512, 6, 6) and [b.c2.out_channels for b in g.blocks] == [256, 128, 64]
    f, g = build_ctrl_nets("resnet32", (3, 32, 32))
    assert g.map_shape == (256, 4, 4) and [b.c2.out_channels for b in g.blocks] == [256] * 3
    assert [b.c2.out_channels for b in f[0].blocks] == [128] * 4


def test_blocks():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 8)
    up = UpBlock(6, 4)
    assert up(x).shape == (2, 4, 16, 16)
    # nearest up-sampling commutes with the 1×1 shortcut: conv-then-upsample == upsample-then-conv
    h = F.interpolate(F.relu(up.b1(x)), scale_factor=2, mode="nearest")
    h = up.c2(F.relu(up.b2(up.c1(h))))
    torch.testing.assert_close(up(x), h + up.c_sc(F.interpolate(x, scale_factor=2, mode="nearest")))
    assert UpBlock(6, 6, upsample=False).c_sc is None
    assert UpBlock(6, 6, upsample=False)(x).shape == x.shape
    down = DownBlock(6, 6, downsample=False, spectral_norm=False)
    assert down.c_sc is None and down(x).shape == x.shape
    # the shortcut reads the block input (not ReLU(input))
    torch.testing.assert_close(down(x) - down.c2(F.relu(down.c1(F.relu(x)))), x)
    assert DownBlock(6, 12)(x).shape == (2, 12, 4, 4)
    assert OptimizedDownBlock(6, 3)(x).shape == (2, 3, 4, 4)


# -- errors ------------------------------------------------------------------------------------------

def test_unknown_arch_names_choices_and_shapes():
    with pytest.raises(ConfigError) as e:
        build_ctrl_nets("resnet64", (3, 64, 64))
    msg = str(e.value)
    assert "model.arch" in msg and "'resnet64'" in msg
    for arch in CTRL_ARCHS:
        assert arch in msg
    assert "C×32×32" in msg and "C×48×48" in msg and "C×128×128" in msg and "any shape" in msg


@pytest.mark.parametrize("arch,shape,fits", [
    ("dcgan32", (1, 28, 28), "mlp"),
    ("dcgan32", (784,), "mlp"),
    ("resnet32", (3, 48, 48), "resnet48, mlp"),
    ("resnet48", (3, 32, 32), "dcgan32, resnet32, mlp"),
    ("resnet128", (3, 128, 64), "mlp"),
    ("mlp", (3, 0, 4), "none"),
])
def test_incompatible_shape_names_choices(arch, shape, fits):
    assert not ctrl_arch_accepts(arch, shape)
    with pytest.raises(ConfigError, match=r"model\.arch") as e:
        build_ctrl_nets(arch, shape)
    msg = str(e.value)
    assert repr(arch) in msg and str(shape) in msg and f"networks that can: {fits};" in msg
    for a in CTRL_ARCHS:
        assert a in msg


def test_bad_feature_dim_or_width():
    with pytest.raises(ConfigError, match=r"model\.feature_dim"):
        build_ctrl_nets("mlp", (4,), feature_dim=0)
    with pytest.raises(ConfigError, match=r"model\.width"):
        build_ctrl_nets("dcgan32", (1, 32, 32), width=0)
    assert ctrl_arch_accepts("dcgan32", (3, 32, 32)) and ctrl_arch_accepts("mlp", (5,))
