"""Datasets derived from MNIST for Deep Quotient Manifold Modeling: ``rgb-mnist`` and
``two-digit-mnist``.

Both are deterministic functions of MNIST and ``cfg.seed`` (and the split). MNIST is found like
``mnist`` (same look-up rules, an explicit ``--data-dir`` included), and its file hashes are the
provenance. The noise-added variants (``data.rect_noise``) are applied by ``load_dataset`` to
whatever these loaders return (``genae.data.transforms.add_rectangles``).
"""
from __future__ import annotations

import torch

from .core import ArrayDataset, DataConfig, derive_seed
from .idx import load_mnist

__all__ = ["RGB_MNIST_COLOURS", "load_rgb_mnist", "two_digit_pairs", "two_digit_keep",
           "load_two_digit_mnist"]

RGB_MNIST_COLOURS = ("red", "green", "blue")


def load_rgb_mnist(cfg: DataConfig, split: str) -> ArrayDataset:
    """MNIST with each digit coloured red, green or blue: ``uint8 (N, 3, 28, 28)``.

    The digit's grey levels go into one channel and the other two are zero, so the colour is a
    pure quotient factor: the digit's shape is unchanged. The colour of each image is drawn
    uniformly from a generator seeded by ``derive_seed(cfg.seed, "rgb-mnist", split)``. Labels
    are the digits (10 classes); factors ``float32 (N, 1)`` the colour index in
    ``RGB_MNIST_COLOURS`` order (0 = red, 1 = green, 2 = blue). N is MNIST's (60000 / 10000).
    """
    base = load_mnist(cfg, split)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "rgb-mnist", split))
    colour = torch.randint(0, len(RGB_MNIST_COLOURS), (len(base),), generator=g)
    n, _, h, w = base.x.shape
    x = torch.zeros(n, len(RGB_MNIST_COLOURS), h, w, dtype=torch.uint8)
    x[torch.arange(n), colour] = base.x[:, 0]
    return ArrayDataset("rgb-mnist", x, base.y, 10, factors=colour.float().unsqueeze(1),
                        factor_names=("colour",), source=base.source, class_names=base.class_names,
                        files=dict(base.files))


# --- two-digit-mnist -------------------------------------------------------------------------------

def two_digit_pairs(n: int, seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(left, right)``: ``int64 (n,)`` indices into an MNIST split of ``n`` images.

    Example i shows MNIST image ``left[i]`` beside MNIST image ``right[i]``. Both are independent
    random permutations (generator seeded by ``derive_seed(seed, "two-digit-mnist", split)``), so
    every MNIST image appears exactly once on each side and the pairs are as many as the images.
    """
    g = torch.Generator().manual_seed(derive_seed(seed, "two-digit-mnist", split))
    left = torch.randperm(n, generator=g)
    right = torch.randperm(n, generator=g)
    return left, right


def two_digit_keep(y: torch.Tensor, multiples_of: int | None,
                   exclude_multiples_of: int | None) -> torch.Tensor:
    """``bool (N,)``: which of the labels ``y`` the ``data.multiples_of`` /
    ``data.exclude_multiples_of`` filter keeps (all when neither is set)."""
    if multiples_of is not None:
        return y % multiples_of == 0
    if exclude_multiples_of is not None:
        return y % exclude_multiples_of != 0
    return torch.ones_like(y, dtype=torch.bool)


def load_two_digit_mnist(cfg: DataConfig, split: str) -> ArrayDataset:
    """Two MNIST digits side by side: ``uint8 (N, 1, 28, 56)``, labels 00..99 (100 classes).

    Pairs from ``two_digit_pairs`` (as many as MNIST has images: 60000 train / 10000 test); the
    label is ``10 * left digit + right digit``; factors ``float32 (N, 2)`` are the two digits
    (``"left"``, ``"right"``). ``cfg.multiples_of = m`` then keeps only the examples whose label is
    a multiple of m, ``cfg.exclude_multiples_of = m`` only the others (same filter on both
    splits; the pairs are drawn first, so the two filtered sets are complementary and disjoint
    parts of the unfiltered one). The label space stays 00..99 (``num_classes`` 100) so that a
    label means the same number with or without a filter, even where a class has no examples.
    """
    base = load_mnist(cfg, split)
    left, right = two_digit_pairs(len(base), cfg.seed, split)
    x = torch.cat([base.x[left], base.x[right]], dim=3)
    digits = torch.stack([base.y[left], base.y[right]], dim=1)
    y = 10 * digits[:, 0] + digits[:, 1]
    keep = two_digit_keep(y, cfg.multiples_of, cfg.exclude_multiples_of)
    if not bool(keep.all()):
        x, y, digits = x[keep], y[keep], digits[keep]
    return ArrayDataset("two-digit-mnist", x.contiguous(), y, 100, factors=digits.float(),
                        factor_names=("left", "right"), source=base.source,
                        class_names=tuple(f"{k:02d}" for k in range(100)), files=dict(base.files))
