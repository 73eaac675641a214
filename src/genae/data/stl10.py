"""STL-10 in the official binary format (Coates, Lee & Ng 2011).

``stl10_binary/`` holds ``train_X.bin`` (5000 images), ``test_X.bin`` (8000) and ``unlabeled_X.bin``
(100000): raw ``uint8`` images of 3×96×96 stored one channel at a time, each channel
*column-major* (so a C-order reshape gives ``(N, 3, W, H)`` and the last two axes are swapped);
``train_y.bin`` / ``test_y.bin`` hold one byte per image, labels 1..10 (stored here as 0..9).
The archive ``stl10_binary.tar.gz`` (2.6 GB) is accepted wherever the files are; the needed
members are extracted into the cache on first use.

Two registry names: ``stl10`` (labelled: 5000 train / 8000 test) and ``stl10-unlabeled`` (the
100000 unlabelled images plus the 5000 train images for training, no labels; test = the 8000 test
images without labels), the split unsupervised image models such as LDR-Binary train on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataset
from .core import ArrayDataset, DataConfig
from .download import FileSet, RemoteFile, cache_dir, extract_members, locate
from .provenance import file_key, sha256_bytes

__all__ = ["STL10_CLASSES", "STL10_FILES", "read_stl10_images", "read_stl10_labels", "load_stl10",
           "load_stl10_unlabeled"]

ARCHIVE = "stl10_binary.tar.gz"
SUBDIR = "stl10_binary"
SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
SPLIT_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin"),
               "unlabeled": ("unlabeled_X.bin", None)}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CorruptDataset(f"{path}: cannot read ({e.strerror or e})") from e


def read_stl10_images(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """An ``*_X.bin`` file -> ``uint8 (N, 3, 96, 96)`` in (channel, row, column) order (a
    read-only view when ``data``, the file's bytes already read, is given)."""
    path = Path(path)
    raw = np.frombuffer(_read_bytes(path) if data is None else data, dtype=np.uint8)
    if raw.size == 0 or raw.size % IMAGE_BYTES:
        raise CorruptDataset(f"{path}: {raw.size} bytes is not a whole number of 3x96x96 images "
                             f"({IMAGE_BYTES} bytes each); the file is truncated or not STL-10")
    return raw.reshape(-1, 3, SIDE, SIDE).transpose(0, 1, 3, 2)  # column-major channels


def read_stl10_labels(path: str | Path, n_images: int, data: bytes | None = None) -> np.ndarray:
    """A ``*_y.bin`` file -> ``int64 (N,)`` labels in [0, 10), checked against the image count.
    ``data``: the file's bytes, when already read."""
    path = Path(path)
    y = np.frombuffer(_read_bytes(path) if data is None else data, dtype=np.uint8).astype(np.int64)
    if y.size != n_images:
        raise CorruptDataset(f"{path}: {y.size} labels for {n_images} images")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise CorruptDataset(f"{path}: labels outside 1..10 (found {y.min()}..{y.max()})")
    return y - 1


def _files_dir(d: Path) -> Path | None:
    for c in (d / SUBDIR, d):
        if (c / "test_X.bin").is_file() or (c / "train_X.bin").is_file():
            return c
    return None


def _needed(split: str, unlabeled: bool) -> list[str]:
    parts = ["unlabeled", "train"] if (unlabeled and split == "train") else [split]
    return [f for p in parts for f in SPLIT_FILES[p] if f and not (unlabeled and f.endswith("_y.bin"))]


def _probe(unlabeled: bool):
    def probe(d: Path, split: str) -> bool:
        b = _files_dir(d)
        if b is not None and all((b / f).is_file() for f in _needed(split, unlabeled)):
            return True
        return (d / ARCHIVE).is_file()
    return probe


def _missing(unlabeled: bool):
    def missing(d: Path, split: str) -> list[str]:
        if (d / ARCHIVE).is_file():
            return []
        b = _files_dir(d) or d / SUBDIR
        return [f"{SUBDIR}/{f}" for f in _needed(split, unlabeled) if not (b / f).is_file()]
    return missing


def _load(d: Path, split: str, unlabeled: bool) -> ArrayDataset:
    """``source``: the directory of the ``.bin`` files, or the archive they were just extracted
    from; ``files``: SHA-256 of each ``.bin`` file read."""
    b = _files_dir(d)
    need = _needed(split, unlabeled)
    source = str(b)
    if b is None or not all((b / f).is_file() for f in need):
        # As for CIFAR-10: extract into the cache, and use only what this archive provided.
        archive, extracted = d / ARCHIVE, set()
        b = extract_members(archive, cache_dir("stl10") / SUBDIR,
                            {f for pair in SPLIT_FILES.values() for f in pair if f}, extracted=extracted)
        missing = [f for f in need if f not in extracted]
        if missing:
            raise CorruptDataset(f"{archive}: has no {', '.join(missing)}")
        source = str(archive)
    files: dict[str, str] = {}

    def read(name: str) -> bytes:
        raw = _read_bytes(b / name)
        files[file_key(b / name)] = sha256_bytes(raw)
        return raw

    if unlabeled:
        x = np.concatenate([read_stl10_images(b / f, read(f)) for f in need])
        return ArrayDataset("stl10-unlabeled", torch.from_numpy(np.ascontiguousarray(x)), None, None,
                            source=source, files=files)
    images, labels = SPLIT_FILES[split]
    x = read_stl10_images(b / images, read(images))
    y = read_stl10_labels(b / labels, len(x), read(labels))
    # The transposed view of read-only bytes: one C-order copy makes it writable for torch.
    return ArrayDataset("stl10", torch.from_numpy(np.array(x, order="C")), torch.from_numpy(y), 10,
                        source=source, class_names=STL10_CLASSES, files=files)


def _fileset(unlabeled: bool) -> FileSet:
    # SHA-256 and size of the official archive as listed in public dataset manifests (the archive
    # is the same for both registry names, cached once under "stl10").
    return FileSet(
        "stl10",
        (RemoteFile(ARCHIVE, ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                              "https://cs.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"),
                    "f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866", 2640397119),),
        _probe(unlabeled),
        f"{SUBDIR}/train_X.bin, train_y.bin, test_X.bin, test_y.bin"
        + (", unlabeled_X.bin" if unlabeled else "") + f", or {ARCHIVE}",
        missing=_missing(unlabeled))


STL10_FILES = _fileset(False)
STL10_UNLABELED_FILES = _fileset(True)


def load_stl10(cfg: DataConfig, split: str) -> ArrayDataset:
    """STL-10 labelled: ``uint8 (N, 3, 96, 96)``, 10 classes; 5000 train / 8000 test."""
    return _load(locate(STL10_FILES, cfg, split), split, unlabeled=False)


def load_stl10_unlabeled(cfg: DataConfig, split: str) -> ArrayDataset:
    """STL-10 for unsupervised training: 105000 unlabelled train images, 8000 test (labels dropped)."""
    return _load(locate(STL10_UNLABELED_FILES, cfg, split), split, unlabeled=True)
