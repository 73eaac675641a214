"""Networks by architecture family: plain ``nn.Module``s that know nothing about methods.

Families (one module each): :mod:`~genae.nets.mlp` (fully connected), :mod:`~genae.nets.dcgan`
(DCGAN convolutions), :mod:`~genae.nets.resnet` (SNGAN residual networks); :mod:`~genae.nets.heads`
(L2 normalisation onto the sphere) and :mod:`~genae.nets.batchnorm` (precise BatchNorm statistics).

Roles, with what a builder's ``(shape, dim, width)`` mean for each (``width``: hidden units or base
channels)::

    encoder        (B, *shape) -> (B, dim)
    decoder        (B, dim) -> (B, *shape)      (a "generator" in a GAN; the same networks)
    generator      (B, dim) -> (B, *shape)
    discriminator  (B, *shape) -> (B, dim) logits, dim = 1 by default; also a WGAN critic
    latent-critic  (B, *shape) -> (B, dim) on codes: shape = (m,), dim = 1 by default
    patch-discriminator  (B, *shape) -> (B, 3, 2, 2) patch logits (LSR-GAN Table 3; dim unused)

Every discriminator (and critic) takes ``forward(x, return_features=False)``; with True it returns
``(logits, features)``, ``features`` ``(B, net.n_features)``: the penultimate representation the
output layer reads (VAE-GAN's feature-space reconstruction, InfoGAN's Q head).

Two ways to build:

- **Generic factories** (``model.net``): ``build_encoder(kind, shape, out_dim, width, depth)``,
  ``build_decoder(kind, latent, shape, width, out_act, depth)`` and
  ``build_discriminator(kind, shape, width, depth, out_dim, batchnorm)`` with ``kind`` ``"mlp"``
  (``depth`` hidden layers of ``width`` units) or ``"conv"`` (DCGAN convolutions with ``width`` base
  channels; square images of side 28, 32 or 64, any channel count) or ``"auto"`` (``resolve_net``:
  "conv" on images the DCGAN family takes, else "mlp"; the image GANs' default). ``width=None``
  uses ``DEFAULT_WIDTH[kind]``.
- **Named presets** (``PRESETS``): the networks of a paper's table, each naming its family, its
  source and the roles it declares; ``build_preset(name, role, shape, dim, width)``. CTRL's
  ``model.arch`` names are presets ``ctrl-<arch>`` (``build_ctrl_nets``), IMAE's ``model.net``
  Tables 1–2 are ``imae-table1`` / ``imae-table2`` and LSR-GAN's Table 3 is ``lsr-table3``
  (``model.net=resnet``), MaskAAE's reference MLPs ``maskaae-mnist``. QMM's Tables B.1–B.3 stay
  in :mod:`~genae.nets.multibias` (``build_multibias_generator``): their generator takes the
  number of bias sets as well, which a role's ``(shape, dim, width)`` does not carry.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Mapping, Sequence

from torch import nn

from ..errors import ConfigError
from .batchnorm import recalibrate_batchnorm
from .dcgan import (CONV_SIZES, DCGAN32Decoder, DCGAN32Encoder, DCGANDecoder, DCGANEncoder, InfoGANDiscriminator,
                    InfoGANGenerator, conv_plan,
                    dcgan32_decoder, dcgan32_encoder, dcgan_init)
from .heads import Builder, L2Normalize, on_sphere
from .mlp import (ACTIVATIONS, IMAE_PRESETS, MLP, MLPDecoder, MLPEncoder, activation, mlp_decoder,
                  mlp_encoder, vector_mlp)
from .lsr import LSRDecoder, LSREncoder, PatchDiscriminator
from .resnet import (SNGAN_PLANS, DownBlock, OptimizedDownBlock, ResNetDecoder, ResNetEncoder, UpBlock,
                     sngan_discriminator, sngan_generator, spectral_normalize)

__all__ = ["ACTIVATIONS", "IMAE_PRESETS", "CONV_SIZES", "CTRL_ARCHS", "CTRL_DEFAULT_WIDTH", "DEFAULT_WIDTH", "NETS", "resolve_net",
           "PRESETS", "ROLES", "SNGAN_PLANS", "DCGAN32Decoder", "DCGAN32Encoder", "DCGANDecoder",
           "DCGANEncoder", "DownBlock", "L2Normalize", "MLP", "MLPDecoder", "MLPEncoder",
           "OptimizedDownBlock", "Preset", "ResNetDecoder", "ResNetEncoder", "UpBlock", "activation",
           "build_ctrl_nets", "build_decoder", "build_discriminator", "build_encoder", "build_preset",
           "ctrl_arch_accepts", "dcgan_init", "recalibrate_batchnorm", "spectral_normalize"]

# --- generic factories (model.net) ---------------------------------------------------------------

NETS = ("mlp", "conv")
DEFAULT_WIDTH = {"mlp": 512, "conv": 64}  # MLP hidden units / conv base channels


def resolve_net(kind: str, shape: Sequence[int]) -> str:
    """``model.net`` as built: "auto" is "conv" for images the DCGAN family takes (square, side 28,
    32 or 64) and "mlp" otherwise (vectors, other image sizes); "mlp"/"conv" are kept as given."""
    if kind != "auto":
        return kind
    try:
        conv_plan(shape)
        return "conv"
    except ValueError:
        return "mlp"


def build_encoder(kind: str, shape: Sequence[int], out_dim: int, width: int | None = None,
                  depth: int = 2) -> nn.Module:
    """``(B, *shape) -> (B, out_dim)`` encoder of family ``kind`` ("mlp" | "conv").

    ``depth``: number of hidden layers of the MLP (the conv family's depth follows the image size).
    """
    kind = resolve_net(kind, shape)
    width = _check(kind, shape, width, depth)
    if kind == "mlp":
        return MLPEncoder(shape, out_dim, (width,) * depth)
    return DCGANEncoder(shape, out_dim, base=width)


def build_decoder(kind: str, latent: int, shape: Sequence[int], width: int | None = None,
                  out_act: str | None = None, depth: int = 2) -> nn.Module:
    """``(B, latent) -> (B, *shape)`` decoder (generator) of family ``kind``; ``out_act`` "sigmoid" |
    "tanh" | None."""
    kind = resolve_net(kind, shape)
    width = _check(kind, shape, width, depth)
    if kind == "mlp":
        return MLPDecoder(latent, shape, (width,) * depth, out_act=out_act)
    return DCGANDecoder(latent, shape, base=width, out_act=out_act)


def build_discriminator(kind: str, shape: Sequence[int], width: int | None = None, depth: int = 2,
                        out_dim: int = 1, batchnorm: bool = True, spectral_norm: bool = False) -> nn.Module:
    """``(B, *shape) -> (B, out_dim)`` logits of family ``kind``; ``forward(x, return_features=True)``
    gives ``(logits, features)`` with features ``(B, net.n_features)``.

    "mlp": ``depth`` hidden layers of ``width`` LeakyReLU(0.2) units (BatchNorm1d after each when
    ``batchnorm``); "conv": the DCGAN discriminator (BatchNorm after all but the first convolution
    when ``batchnorm``; a WGAN-GP critic takes ``batchnorm=False``). ``spectral_norm``: spectral
    normalisation (Miyato et al. 2018) on every convolution and linear layer (``spectral_normalize``).
    """
    kind = resolve_net(kind, shape)
    width = _check(kind, shape, width, depth)
    if kind == "mlp":
        net = MLPEncoder(shape, out_dim, (width,) * depth, act="lrelu", batchnorm=batchnorm)
    else:
        net = DCGANEncoder(shape, out_dim, base=width, batchnorm=batchnorm)
    return spectral_normalize(net) if spectral_norm else net


def _check(kind: str, shape: Sequence[int], width: int | None, depth: int) -> int:
    if kind not in NETS:
        raise ConfigError(f"model.net: unknown network family {kind!r}; choose one of auto, {', '.join(NETS)}")
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


# --- named presets: the papers' tables -------------------------------------------------------------

ROLES = ("encoder", "decoder", "generator", "discriminator", "latent-critic", "patch-discriminator")
_LOGIT_ROLES = ("discriminator", "latent-critic")  # dim defaults to 1


@dataclass(frozen=True)
class Preset:
    """The networks of one paper table (or reference code): ``roles`` maps a role (see ``ROLES``) to
    its builder ``(shape, dim, width) -> nn.Module``.

    family: "mlp" | "dcgan" | "resnet"; source: where the layer lists come from; width: the source's
    width (hidden units or base channels); dim: the source's code size (the default ``dim`` of
    encoders, decoders and generators); side: the square image side it takes (any channel count),
    None for any shape.
    """

    family: str
    source: str
    roles: Mapping[str, Builder]
    width: int
    dim: int
    side: int | None = None

    def accepts(self, shape: Sequence[int]) -> bool:
        """Whether the preset's networks take data of ``shape`` (without the batch axis)."""
        shape = tuple(shape)
        if self.side is None:
            return len(shape) >= 1 and min(shape) >= 1
        return len(shape) == 3 and shape[0] >= 1 and shape[1:] == (self.side, self.side)

    def shapes(self) -> str:
        """What ``accepts`` takes, in words."""
        return "any shape" if self.side is None else f"C×{self.side}×{self.side} images"

    def build(self, role: str, shape: Sequence[int], dim: int | None = None,
              width: int | None = None) -> nn.Module:
        """The ``role`` network for data of ``shape`` (no checks; :func:`build_preset` checks)."""
        if dim is None:
            dim = 1 if role in _LOGIT_ROLES else self.dim
        return self.roles[role](tuple(shape), dim, self.width if width is None else width)


def _mlp_roles(depth: int, act: str = "relu", batchnorm: bool = False, out_act: str | None = None,
               sphere: bool = False, critic: bool = False) -> dict[str, Builder]:
    enc = partial(mlp_encoder, depth=depth, act=act, batchnorm=batchnorm)
    roles = {"encoder": on_sphere(enc) if sphere else enc,
             "decoder": partial(mlp_decoder, depth=depth, act=act, batchnorm=batchnorm, out_act=out_act)}
    if critic:
        roles["latent-critic"] = partial(vector_mlp, depth=depth, act=act)
    return roles


_CTRL_RESNET = {"encoder": on_sphere(sngan_discriminator), "decoder": sngan_generator}
_SNGAN = {"generator": sngan_generator, "discriminator": sngan_discriminator, "encoder": sngan_discriminator}

def _imae_roles(table: str) -> dict[str, Builder]:
    """IMAE Table 1 or 2 (``IMAE_PRESETS``): the encoder (BatchNorm where the table has it), the
    decoder of logits; the layer widths are the table's (a ``width`` given is not used)."""
    enc, dec, batchnorm = IMAE_PRESETS[table]
    return {"encoder": lambda shape, dim, width: MLPEncoder(shape, dim, enc, batchnorm=batchnorm),
            "decoder": lambda shape, dim, width: MLPDecoder(dim, shape, dec)}


# LSR-GAN Table 3 (nets/lsr.py): the ResNet VAE (the encoder's dim = 2·latent: mean and
# log-variance) whose decoder architecture the generator repeats, and the patch discriminator of
# ``width`` first channels; the ResNets' widths are the table's (a ``width`` given is not used)
_LSR_TABLE3 = {"encoder": lambda shape, dim, width: LSREncoder(shape, _half(dim)),
               "decoder": lambda shape, dim, width: LSRDecoder(dim, shape),
               "generator": lambda shape, dim, width: LSRDecoder(dim, shape),
               "patch-discriminator": lambda shape, dim, width: PatchDiscriminator(shape, width)}


def _half(dim: int) -> int:
    if dim % 2:
        raise ConfigError(f"lsr-table3's encoder gives a mean and a log-variance: its dim must be even, got {dim}")
    return dim // 2

PRESETS: dict[str, Preset] = {
    # CTRL (Dai et al. 2022): encoder f -> rows on the unit sphere, decoder g -> tanh images
    "ctrl-dcgan32": Preset("dcgan", "CTRL Tables 4 (decoder) and 5 (encoder): MNIST DCGAN",
                           {"encoder": dcgan32_encoder, "decoder": dcgan32_decoder},
                           width=64, dim=128, side=32),
    "ctrl-resnet32": Preset("resnet", "CTRL Tables 6-7: SNGAN ResNet, CIFAR-10",
                            _CTRL_RESNET, width=128, dim=128, side=32),
    "ctrl-resnet48": Preset("resnet", "CTRL Tables 8-9: SNGAN ResNet, STL-10",
                            _CTRL_RESNET, width=64, dim=128, side=48),
    "ctrl-resnet128": Preset("resnet", "CTRL Tables 10-11: SNGAN ResNet, CelebA/LSUN/ImageNet 128×128",
                             _CTRL_RESNET, width=64, dim=128, side=128),
    "ctrl-mlp": Preset("mlp", "genae's CPU-sized CTRL pair (not from the paper; see nets/mlp.py)",
                       _mlp_roles(2, batchnorm=True, out_act="tanh", sphere=True), width=512, dim=128),
    # MaskAAE (Mondal et al. 2020): E, G (logits, for BCE) and the latent critic H; m = 64 (MNIST config)
    "maskaae-mnist": Preset("mlp", "MaskAAE reference code MaskAAE_MNIST.py, 4×1024 ReLU (the "
                            "supplement's tables were not available)",
                            _mlp_roles(4, critic=True), width=1024, dim=64),
    # SNGAN (Miyato et al. 2018) ResNets, as torch_mimicry's SNGAN{Generator,Discriminator}{32,48,128}
    "sngan32": Preset("resnet", "SNGAN ResNet 32×32 (the networks of CTRL Tables 6-7)",
                      _SNGAN, width=128, dim=128, side=32),
    "sngan48": Preset("resnet", "SNGAN ResNet 48×48 (the networks of CTRL Tables 8-9)",
                      _SNGAN, width=64, dim=128, side=48),
    "sngan128": Preset("resnet", "SNGAN ResNet 128×128 (the networks of CTRL Tables 10-11)",
                       _SNGAN, width=64, dim=128, side=128),
    # IMAE (Gao et al. 2019) Tables 1 (MNIST, Fashion-MNIST) and 2 (dSprites): fixed layer lists
    "imae-table1": Preset("mlp", "IMAE Table 1: FC 500, FC 2×500 encoder; FC 500, FC 500 decoder",
                          _imae_roles("imae-table1"), width=500, dim=10),
    "imae-table2": Preset("mlp", "IMAE Table 2 (dSprites): FC 1200, 1200, 2×1200 encoder (no BatchNorm); "
                          "FC 1200 ×3 decoder",
                          _imae_roles("imae-table2"), width=1200, dim=10),
    # LSR-GAN (Hu et al.) Table 3: 28×28 images are padded to 32×32 by the encoder (the networks
    # raise a ValueError for other sizes, which lsr-gan turns into its ConfigError)
    # InfoGAN (Chen et al. 2016) Table 1, MNIST: the 1024-unit FC layers the generic "conv" lacks;
    # width = the first convolution's channels (64), G's input the 74-dim [z, c]
    "infogan-mnist": Preset("dcgan", "InfoGAN Table 1 (MNIST), as the official code's network_type 'mnist'",
                            {"generator": lambda shape, dim, width: InfoGANGenerator(dim, shape, width, out_act="tanh"),
                             "discriminator": lambda shape, dim, width: InfoGANDiscriminator(shape, dim, width)},
                            width=64, dim=74, side=28),
    "lsr-table3": Preset("resnet", "LSR-GAN Table 3: ResNet VAE and generator, patch discriminator "
                         "(base channels as the reference code)", _LSR_TABLE3, width=32, dim=128),
}


def build_preset(name: str, role: str, shape: Sequence[int], dim: int | None = None,
                 width: int | None = None) -> nn.Module:
    """The ``role`` network of preset ``name`` for data of ``shape`` (see ``ROLES`` for what ``dim``
    means per role; None: 1 for discriminators and critics, else the preset's ``dim``); ``width=None``
    uses the preset's. Unknown names, undeclared roles, shapes the preset cannot take and bad sizes
    raise ConfigError naming the choices."""
    if name not in PRESETS:
        raise ConfigError(f"unknown network preset {name!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    if role not in p.roles:
        raise ConfigError(f"network preset {name!r} has no {role!r} network; roles: {', '.join(p.roles)}")
    if not p.accepts(shape):
        raise ConfigError(f"network preset {name!r} cannot take data of shape {tuple(shape)}; "
                          f"it takes {p.shapes()}")
    for what, v in (("dim", dim), ("width", width)):
        if v is not None and not _positive_int(v):
            raise ConfigError(f"network preset {name!r}: {what} must be a positive integer, got {v!r}")
    return p.build(role, shape, dim, width)


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


# --- CTRL's model.arch: the ctrl-* presets ---------------------------------------------------------

CTRL_ARCHS = ("dcgan32", "resnet32", "resnet48", "resnet128", "mlp")
CTRL_DEFAULT_WIDTH = {a: PRESETS[f"ctrl-{a}"].width for a in CTRL_ARCHS}  # base channels / MLP units


def build_ctrl_nets(arch: str, shape: tuple[int, ...], feature_dim: int = 128,
                    width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """(encoder f, decoder g) of preset ``ctrl-<arch>``, built in that order. f: (B, *shape) ->
    (B, feature_dim) L2-normalised rows (features on the unit sphere); g: (B, feature_dim) ->
    (B, *shape) in [-1, 1] (tanh). Unknown arch / incompatible shape -> ConfigError naming
    `model.arch`, the valid choices and the shapes each arch accepts.

    arch: one of ``CTRL_ARCHS``; ``width=None`` uses ``CTRL_DEFAULT_WIDTH[arch]`` (the paper's
    channel counts).
    """
    if arch not in CTRL_ARCHS:
        raise ConfigError(f"model.arch: unknown CTRL network {arch!r}; choose one of {_ctrl_choices()}")
    shape = tuple(int(s) for s in shape)
    if not ctrl_arch_accepts(arch, shape):
        fits = [a for a in CTRL_ARCHS if ctrl_arch_accepts(a, shape)]
        raise ConfigError(f"model.arch: {arch!r} cannot take data of shape {shape}; "
                          f"networks that can: {', '.join(fits) or 'none'}; "
                          f"choices: {_ctrl_choices()}")
    if not _positive_int(feature_dim):
        raise ConfigError(f"model.feature_dim must be a positive integer, got {feature_dim!r}")
    w = CTRL_DEFAULT_WIDTH[arch] if width is None else width
    if not _positive_int(w):
        raise ConfigError(f"model.width must be a positive integer (channels or hidden units), got {w!r}")
    p = PRESETS[f"ctrl-{arch}"]
    f = p.build("encoder", shape, feature_dim, w)
    return f, p.build("decoder", shape, feature_dim, w)


def ctrl_arch_accepts(arch: str, shape: Sequence[int]) -> bool:
    """Whether ``arch`` (one of ``CTRL_ARCHS``) can take data of ``shape`` (without the batch axis)."""
    return arch in CTRL_ARCHS and PRESETS[f"ctrl-{arch}"].accepts(shape)


def _ctrl_choices() -> str:
    return ", ".join(f"{a} ({PRESETS[f'ctrl-{a}'].shapes()})" for a in CTRL_ARCHS)

