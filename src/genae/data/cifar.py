"""CIFAR-10 in the official "python version" format.

``cifar-10-batches-py/`` holds ``data_batch_1`` .. ``data_batch_5`` (train, 10000 each) and
``test_batch``: pickled dicts with ``b"data"``, a ``uint8 (N, 3072)`` array (1024 red, then 1024
green, then 1024 blue values, each 32×32 row-major, so a plain reshape gives ``(N, 3, 32, 32)``),
and ``b"labels"``, a list of N ints in [0, 10). The archive ``cifar-10-python.tar.gz`` is also
accepted wherever the batches are; it is extracted into the cache on first use.

The batches are unpickled with an unpickler that only builds plain containers and NumPy arrays, so
a tampered file cannot run code.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataset
from .core import ArrayDataset, DataConfig
from .download import FileSet, RemoteFile, cache_dir, extract_members, locate
from .provenance import file_key, sha256_bytes

__all__ = ["CIFAR10_FILES", "CIFAR10_CLASSES", "read_cifar_batch", "load_cifar_dir", "load_cifar10"]

ARCHIVE = "cifar-10-python.tar.gz"
SUBDIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")

class _SafeUnpickler(pickle.Unpickler):
    """Allows only what a CIFAR batch contains: NumPy array reconstruction (and ``_codecs.encode``,
    which protocol-2 pickles of ``bytes`` use)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")


def read_cifar_batch(path: str | Path, raw: bytes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> ``uint8 (N, 3, 32, 32)`` images and ``int64 (N,)`` labels.
    ``raw``: the file's bytes, when already read."""
    path = Path(path)
    if raw is None:
        raw = _read_bytes(path)
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # UnpicklingError, EOFError, ValueError, ... : all mean a bad file
        raise CorruptDataset(f"{path}: not a valid CIFAR batch pickle ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise CorruptDataset(f"{path}: expected a pickled dict, found {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise CorruptDataset(f"{path}: no 'data' and 'labels' entries (keys: {sorted(map(str, d))})")
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise CorruptDataset(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise CorruptDataset(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise CorruptDataset(f"{path}: labels outside [0, 10)")
    return data.reshape(-1, 3, 32, 32), labels


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CorruptDataset(f"{path}: cannot read ({e.strerror or e})") from e


def _batch_dir(d: Path) -> Path | None:
    """The directory under ``d`` holding the batch files (``d/cifar-10-batches-py`` or ``d``)."""
    for c in (d / SUBDIR, d):
        if (c / "test_batch").is_file() or (c / "data_batch_1").is_file():
            return c
    return None


def has_cifar_split(d: Path, split: str) -> bool:
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    b = _batch_dir(d)
    if b is not None and all((b / n).is_file() for n in names):
        return True
    return (d / ARCHIVE).is_file()


def missing_cifar_files(d: Path, split: str) -> list[str]:
    """The batch files of ``split`` absent from ``d`` (or its ``cifar-10-batches-py``); [] when
    the archive, which holds them all, is there."""
    if (d / ARCHIVE).is_file():
        return []
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    b = _batch_dir(d) or d / SUBDIR
    return [f"{SUBDIR}/{n}" for n in names if not (b / n).is_file()]


def extract_archive(archive: Path, dest: Path, extracted: set[str] | None = None) -> Path:
    """Extract the batch files of the official archive into ``dest/cifar-10-batches-py``;
    ``extracted`` receives the names written."""
    return extract_members(archive, dest / SUBDIR, set(TRAIN_BATCHES + TEST_BATCHES + ("batches.meta",)),
                           extracted=extracted)


def load_cifar_dir(d: Path, split: str) -> ArrayDataset:
    """CIFAR-10 ``split`` from directory ``d`` (batches, or the archive, which is extracted).

    ``source`` is the batch directory, or the archive when the batches came from it; ``files``
    records the SHA-256 of each batch file read (for the archive: of the members just extracted
    from it, which are what the images are made of).
    """
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    b = _batch_dir(d)
    source = str(b)
    if b is None or not all((b / n).is_file() for n in names):
        # Only the archive is here: extract into the cache (always ours to write, unlike a
        # read-only --data-dir) and read from there. Only members written by this extraction
        # count: a batch left in the cache by another archive must not stand in for one this
        # archive lacks.
        archive, extracted = d / ARCHIVE, set()
        b = extract_archive(archive, cache_dir("cifar10"), extracted)
        missing = [n for n in names if n not in extracted]
        if missing:
            raise CorruptDataset(f"{archive}: has no {', '.join(missing)}")
        source = str(archive)
    parts, files = [], {}
    for n in names:
        raw = _read_bytes(b / n)
        files[file_key(b / n)] = sha256_bytes(raw)
        parts.append(read_cifar_batch(b / n, raw))
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return ArrayDataset("cifar10", x, y, 10, source=source, class_names=CIFAR10_CLASSES, files=files)


# SHA-256 of the official archive (as pinned by torchvision's datasets prototype; its MD5, which
# torchvision's CIFAR10 checks, is c58f30108f718f92721af3b95e74349a).
CIFAR10_FILES = FileSet(
    "cifar10",
    (RemoteFile(ARCHIVE, ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170498071),),
    has_cifar_split,
    f"{SUBDIR}/data_batch_1..5 and test_batch, or {ARCHIVE}",
    missing=missing_cifar_files)


def load_cifar10(cfg: DataConfig, split: str) -> ArrayDataset:
    """CIFAR-10: ``uint8 (N, 3, 32, 32)``, 10 classes; 50000 train / 10000 test."""
    return load_cifar_dir(locate(CIFAR10_FILES, cfg, split), split)
