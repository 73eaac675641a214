"""Procedural datasets: ``synthetic`` (MaskAAE), ``transformed-mnist`` and ``fake``.

All are deterministic functions of ``cfg.seed`` (and the split): nothing is downloaded, except
that ``transformed-mnist`` transforms MNIST, found like ``mnist`` (same look-up rules, an explicit
``--data-dir`` included, and MNIST's file hashes as its provenance).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .core import ArrayDataset, DataConfig, derive_seed
from .idx import load_mnist
from .transforms import affine_images, rotation_theta, scale_theta

__all__ = ["SyntheticNetwork", "synthetic_network", "load_synthetic", "TRANSFORMED_MNIST_MODES",
           "transform_mode_thetas", "load_transformed_mnist", "make_fake", "load_fake"]

SYNTHETIC_HIDDEN = 128
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 60000, 10000
LEAKY_SLOPE = 0.2


class SyntheticNetwork:
    """The fixed random map f: R^n -> R^d of MaskAAE's synthetic data.

    ``f(z) = W2 · lrelu(W1 z + b1) + b2`` with leaky-ReLU slope 0.2, 128 hidden units and no
    activation on the output (the paper describes a two-layer leaky-ReLU network; a linear output
    is the natural reading and keeps the data unbounded like the Gaussian it comes from).
    Weights: ``W1 ~ N(0, 1/n)``, ``W2 ~ N(0, 1/128)`` (variance-preserving, so x has roughly unit
    scale), biases ``~ N(0, 0.1²)``, all drawn from ``torch.Generator().manual_seed(seed)``.

    For n ≤ 128 and n ≤ d the Jacobian ``W2 · diag(lrelu'(·)) · W1`` has rank n almost surely
    (the diagonal is 1 or 0.2, never 0), so the data lie on an n-dimensional manifold.
    Accepts ``(n,)`` or ``(B, n)`` float tensors on any device.
    """

    def __init__(self, latent_dim: int, dim: int, seed: int, hidden: int = SYNTHETIC_HIDDEN):
        g = torch.Generator().manual_seed(seed)
        self.latent_dim, self.dim, self.hidden = latent_dim, dim, hidden
        self.w1 = torch.randn(hidden, latent_dim, generator=g) / math.sqrt(latent_dim)
        self.b1 = 0.1 * torch.randn(hidden, generator=g)
        self.w2 = torch.randn(dim, hidden, generator=g) / math.sqrt(hidden)
        self.b2 = 0.1 * torch.randn(dim, generator=g)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = (t.to(z.device, z.dtype) for t in (self.w1, self.b1, self.w2, self.b2))
        return F.leaky_relu(z @ w1.T + b1, LEAKY_SLOPE) @ w2.T + b2


def synthetic_network(latent_dim: int, dim: int, seed: int) -> SyntheticNetwork:
    """The generator network of ``synthetic`` for these settings (see ``SyntheticNetwork``)."""
    return SyntheticNetwork(latent_dim, dim, seed)


def load_synthetic(cfg: DataConfig, split: str) -> ArrayDataset:
    """MaskAAE's synthetic data: z̃ ~ N(0, I_n), x = f(z̃) ``float32 (N, d)``; factors = z̃.

    N = ``cfg.n`` (default 60000) for train, 10000 for test. The latents of the two splits come
    from distinct seeds derived from ``cfg.seed``; the network from ``cfg.seed`` itself.
    """
    n = (cfg.n or SYNTHETIC_TRAIN) if split == "train" else SYNTHETIC_TEST
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "synthetic", split))
    z = torch.randn(n, cfg.latent_dim, generator=g)
    x = synthetic_network(cfg.latent_dim, cfg.dim, cfg.seed)(z)
    names = tuple(f"z{i}" for i in range(cfg.latent_dim))
    return ArrayDataset("synthetic", x, None, None, factors=z, factor_names=names, kind="vector",
                        source="generated")


# --- transformed-mnist ----------------------------------------------------------------------------

TRANSFORMED_MNIST_MODES = ("normal", "scale x1.5", "scale x0.5", "rotate +45", "rotate -45")


def transform_mode_thetas() -> list[torch.Tensor | None]:
    """affine_grid matrices of the five modes, in ``TRANSFORMED_MNIST_MODES`` order (None =
    identity). Rotations are counter-clockwise as displayed for +45°."""
    return [None, scale_theta(1.5), scale_theta(0.5), rotation_theta(45.0), rotation_theta(-45.0)]


def load_transformed_mnist(cfg: DataConfig, split: str) -> ArrayDataset:
    """MNIST where each image is shown in one of five modes (``TRANSFORMED_MNIST_MODES``).

    The mode of each image is drawn uniformly from a generator seeded by ``cfg.seed`` and the
    split. Labels are the digits; factors ``float32 (N, 1)`` the mode index.
    """
    base = load_mnist(cfg, split)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "transformed-mnist", split))
    modes = torch.randint(0, len(TRANSFORMED_MNIST_MODES), (len(base),), generator=g)
    x = base.x.clone()
    for m, theta in enumerate(transform_mode_thetas()):
        if theta is not None:
            idx = (modes == m).nonzero().squeeze(1)
            x[idx] = affine_images(base.x[idx], theta)
    return ArrayDataset("transformed-mnist", x, base.y, 10, factors=modes.float().unsqueeze(1),
                        factor_names=("mode",), source=base.source, class_names=base.class_names,
                        files=dict(base.files))


# --- fake -------------------------------------------------------------------------------------------

FAKE_TRAIN, FAKE_TEST, FAKE_SIZE = 256, 64, 28


def make_fake(n: int, size: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` learnable toy images ``uint8 (n, 1, size, size)`` and labels ``int64 (n,)``.

    Class k < 5 is a bright horizontal bar in row band k of 5, class k ≥ 5 a vertical bar in column
    band k - 5, jittered by ±1 pixel, over dim uniform noise. Classes are as balanced as n allows.
    """
    g = torch.Generator().manual_seed(derive_seed(seed, "fake", split))
    y = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]
    t = max(2, size // 10)                                            # bar thickness
    band = (torch.arange(5) + 0.5) * size / 5 - t / 2                 # bar start of each band
    start = band[y % 5].round().long() + torch.randint(-1, 2, (n,), generator=g)
    start = start.clamp(0, size - t)
    coord = torch.arange(size)
    on = (coord[None, :] >= start[:, None]) & (coord[None, :] < start[:, None] + t)  # (n, size)
    horizontal = (y < 5)[:, None, None]
    mask = torch.where(horizontal, on[:, :, None].expand(n, size, size),
                       on[:, None, :].expand(n, size, size))
    noise = torch.randint(0, 48, (n, size, size), generator=g, dtype=torch.uint8)
    bright = torch.randint(200, 256, (n, size, size), generator=g, dtype=torch.uint8)
    x = torch.where(mask, bright, noise).unsqueeze(1)
    return x, y


def load_fake(cfg: DataConfig, split: str) -> ArrayDataset:
    """``fake``: ``make_fake`` with N = ``cfg.n`` or 256 (train) / 64 (test), 10 classes, drawn
    directly at ``cfg.image_size`` (default 28)."""
    n = (cfg.n or FAKE_TRAIN) if split == "train" else FAKE_TEST
    x, y = make_fake(n, cfg.image_size or FAKE_SIZE, cfg.seed, split)
    return ArrayDataset("fake", x, y, 10, source="generated",
                        class_names=tuple(f"{'row' if k < 5 else 'column'} {k % 5}" for k in range(10)))
