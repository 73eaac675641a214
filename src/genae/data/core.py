"""The data types every loader shares: ``DataConfig``, ``ArrayDataset``, ``DatasetSpec``, and
what methods receive: ``DataInfo`` (to build networks) and ``Batch`` (one training batch).
Nothing here imports a method, so ``genae.data`` does not depend on ``genae.methods``.

They live here rather than in ``genae.data.__init__`` so that the loader modules (``idx``,
``cifar``, ...) can import them without importing the registry, which imports the loaders.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


__all__ = ["ArrayDataset", "Batch", "DataConfig", "DataInfo", "DatasetSpec", "derive_seed", "SPLITS"]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about its data to build its networks.

    shape: one example's shape, ``(C, H, W)`` for images or ``(D,)`` for vectors.
    num_classes: number of labels, or None for unlabelled data.
    kind: "image" or "vector".
    size: number of training examples N (what the aggregate-posterior estimators of β-TCVAE and
        IMAE weigh a minibatch by); None where unknown (runs saved before it was recorded).
    """

    shape: tuple[int, ...]
    num_classes: int | None = None
    kind: str = "image"
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "num_classes": self.num_classes, "kind": self.kind,
                "size": self.size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataInfo":
        return cls(tuple(d["shape"]), d.get("num_classes"), d.get("kind", "image"), d.get("size"))


@dataclass
class Batch:
    """One training batch on the method's device.

    x: ``(B, C, H, W)`` images in the method's input range, or ``(B, D)`` vectors; float32.
    y: ``(B,)`` int64 labels, or None for unlabelled data.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None


@dataclass
class DataConfig:
    """The ``data.*`` config namespace.

    name: registry name (``genae data list``) or ``"folder:PATH"`` for a directory of images.
    root: the ``--data-dir``: a directory holding the dataset's files, either directly or in a
        sub-directory named after the dataset. Authoritative: when set, files are read from there
        only (never the cache, a system directory or a download) and missing files are an error.
        When None, the environment variable ``GENAE_DATA`` is a hint looked in first, before the
        cache, system directories and a download (``genae.data.download``).
    image_size: pad or resize images to ``image_size × image_size`` once at load time (e.g. 32 for
        nets built for 32×32 inputs: 28 → 32 is a 2-pixel zero border, as in CTRL; other changes
        are bilinear). None keeps the native size (folder datasets then default to 64).
    limit: use only the first ``limit`` training examples (deterministic; the test split is whole).
    latent_dim: ``synthetic`` only: the true latent dimension n of the data manifold.
    dim: ``synthetic`` only: the ambient dimension d of the vectors.
    seed: ``synthetic`` (generator network and latent draws), ``transformed-mnist`` (which mode each
        image gets), ``rgb-mnist`` (which colour), ``two-digit-mnist`` (which digits are paired),
        ``dsprites`` / ``dsprites-npz`` (which grid cells form the splits) and ``fake`` (the
        procedural images) only. Also seeds ``rect_noise`` on those datasets.
    n: number of training examples of a procedural set (``synthetic``: default 60000, ``fake``:
        default 256, ``dsprites`` / ``dsprites-npz``: default 60000 cells of the 737,280). ``transformed-mnist``, ``rgb-mnist`` and ``two-digit-mnist`` use MNIST's
        number of examples.
    multiples_of: ``two-digit-mnist`` only: keep only the examples whose label (00..99) is a
        multiple of this positive integer (``9`` keeps 00, 09, 18, ..., 99), in both splits.
    exclude_multiples_of: ``two-digit-mnist`` only: drop the examples whose label is a multiple of
        this positive integer, keeping the rest. At most one of the two is set; with the same value
        they split the dataset into two complementary, disjoint parts.
    rect_noise: number K of random filled rectangles added to every image (0 = none), the
        noise-added images of the QMM paper (``genae.data.transforms.add_rectangles``); image
        datasets of MNIST kind only (``mnist``, ``fashion-mnist``, ``emnist-letters``,
        ``transformed-mnist``, ``rgb-mnist``, ``two-digit-mnist``).
    download: allow downloading from the official URL when the files are found nowhere locally
        (never with an explicit ``root``); false means nothing is ever fetched.
    """

    name: str = "fashion-mnist"
    root: str | None = None
    image_size: int | None = None
    limit: int | None = None
    latent_dim: int = 8
    dim: int = 128
    seed: int = 0
    n: int | None = None
    download: bool = True
    multiples_of: int | None = None
    exclude_multiples_of: int | None = None
    rect_noise: int = 0


@dataclass
class ArrayDataset:
    """A whole split held in memory.

    x: ``uint8 (N, C, H, W)`` images, or ``float32 (N, D)`` vectors.
    y: ``int64 (N,)`` labels in ``[0, num_classes)``, or None for unlabelled data.
    factors: ``float32 (N, F)`` ground-truth factors where known (``synthetic``: the latent z̃;
        ``transformed-mnist``: the mode index; ``rgb-mnist``: the colour index; ``two-digit-mnist``:
        the left and right digits), named by ``factor_names``.
    kind: ``"image"`` or ``"vector"``.
    source: where the data came from (a directory or file), or ``"generated"``; for ``data info``.
    class_names: names of the classes where known (index = label), for reports and ``data info``.
    files: provenance: absolute path of each file read -> SHA-256 (hex) of the bytes read; empty
        for generated data (``fake``, ``synthetic``). A ``folder:`` dataset records one entry for
        the folder instead, its value the SHA-256 over the split's sorted (relative path, file
        SHA-256) list (``genae.data.provenance.folder_digest``). See ``genae.data.provenance``.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    num_classes: int | None
    factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()
    kind: str = "image"
    source: str | None = None
    class_names: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)

    @property
    def info(self) -> DataInfo:
        """What a method needs to build its networks: one example's shape, classes, kind."""
        return DataInfo(tuple(self.x.shape[1:]), self.num_classes, self.kind, len(self))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, n: int) -> "ArrayDataset":
        """The first ``n`` examples (copies, so the rest of the split can be freed)."""
        cut = lambda t: None if t is None else t[:n].clone()  # noqa: E731
        return ArrayDataset(self.name, cut(self.x), cut(self.y), self.num_classes, cut(self.factors),
                            self.factor_names, self.kind, self.source, self.class_names,
                            dict(self.files))


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry.

    load: ``(cfg, split) -> ArrayDataset`` with split in ``{"train", "test"}``; returns native-size
        data (``load_dataset`` applies ``image_size`` and ``limit``).
    description: one line for ``genae data list``.
    params: the dataset-specific ``DataConfig`` fields this dataset reads, besides the common
        ``name``, ``root``, ``image_size``, ``limit`` and ``download``.
    labelled: whether examples carry class labels.
    kind: ``"image"`` or ``"vector"``.
    files: the ``download.FileSet`` the dataset reads (where to look, what to download), or None
        for a procedural dataset; ``transformed-mnist`` reads MNIST's file set.
    """

    load: Callable[[DataConfig, str], ArrayDataset]
    description: str
    params: tuple[str, ...] = ()
    labelled: bool = True
    kind: str = "image"
    files: Any = None  # download.FileSet | None (typed loosely: download imports this module)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` by hashing, stable across runs, platforms and versions.

    Used wherever one user seed must give several independent streams (train vs test draws, one
    permutation per epoch, one per class): ``seed + 1`` style offsets would make seed 0's test
    stream equal seed 1's train stream.
    """
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
