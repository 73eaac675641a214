"""EMNIST Letters (Cohen, Afshar, Tapson & van Schaik 2017) in IDX format: ``emnist-letters``.

Files: ``emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte``, gzipped (``.gz``) or raw,
in the IDX layout of ``genae.data.idx`` (124800 train / 20800 test images of 28×28). Two things
differ from MNIST, and the reader undoes both:

- images are stored transposed (each 28×28 block is column-major, a legacy of the MATLAB
  conversion), so read as MNIST is read the letters lie on their side, mirrored; the reader swaps
  the last two axes so letters are upright;
- labels are 1..26 (A/a .. Z/z; upper and lower case share a class), stored here as 0..25.

The official distribution is NIST's ``gzip.zip`` (all six EMNIST splits, 562 MB), whose
``gzip/emnist-letters-*.gz`` members are these files. The zip is accepted wherever the files are
(a ``--data-dir`` holding ``gzip.zip``, torchvision's ``EMNIST/raw``, the cache after a download):
the four letters members are then extracted into the cache on first use, as for CIFAR-10.
"""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataset
from .core import ArrayDataset, DataConfig
from .download import FileSet, RemoteFile, cache_dir, extract_members, locate
from .idx import find_gz_or_raw, read_idx_images, read_idx_labels
from .provenance import file_key, sha256_bytes

__all__ = ["EMNIST_LETTERS_FILES", "EMNIST_LETTERS_CLASSES", "ZIP", "emnist_letters_name",
           "load_emnist_letters_dir", "load_emnist_letters"]

ZIP = "gzip.zip"
NAME = "emnist-letters"
EMNIST_LETTERS_CLASSES = tuple(f"{u}/{l}" for u, l in zip(string.ascii_uppercase, string.ascii_lowercase))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CorruptDataset(f"{path}: cannot read ({e.strerror or e})") from e


def emnist_letters_name(split: str, what: str) -> str:
    """The official file name (without ``.gz``) of ``what`` ("images" or "labels") of ``split``."""
    return f"{NAME}-{split}-{'images-idx3' if what == 'images' else 'labels-idx1'}-ubyte"


def _find(d: Path, split: str, what: str) -> Path | None:
    return find_gz_or_raw(d, emnist_letters_name(split, what))


def _has_files(d: Path, split: str) -> bool:
    return _find(d, split, "images") is not None and _find(d, split, "labels") is not None


def has_emnist_letters_split(d: Path, split: str) -> bool:
    return _has_files(d, split) or (d / ZIP).is_file()


def missing_emnist_letters_files(d: Path, split: str) -> list[str]:
    """The files of ``split`` absent from ``d``; [] when the zip, which holds them all, is there."""
    if (d / ZIP).is_file():
        return []
    return [f"{emnist_letters_name(split, w)}[.gz]" for w in ("images", "labels") if _find(d, split, w) is None]


def _members() -> set[str]:
    return {emnist_letters_name(s, w) + ".gz" for s in ("train", "test") for w in ("images", "labels")}


def load_emnist_letters_dir(d: Path, split: str) -> ArrayDataset:
    """EMNIST Letters ``split`` from directory ``d``: ``uint8 (N, 1, 28, 28)`` upright letters and
    ``int64 (N,)`` labels in [0, 26).

    Reads the IDX files of ``d``, or else extracts the letters members of ``d/gzip.zip`` into the
    cache and reads those (``source`` is then the zip). ``files``: SHA-256 of the two files read.
    """
    source = str(d)
    if not _has_files(d, split):
        # Only the zip is here: extract into the cache (ours to write, unlike a --data-dir) and use
        # only what this zip provided, never a file an earlier extraction left there.
        archive, extracted = d / ZIP, set()
        d = extract_members(archive, cache_dir(NAME), _members(), extracted=extracted)
        missing = [n for n in (emnist_letters_name(split, w) + ".gz" for w in ("images", "labels"))
                   if n not in extracted]
        if missing:
            raise CorruptDataset(f"{archive}: has no gzip/{', gzip/'.join(missing)}")
        source = str(archive)
    ipath, lpath = _find(d, split, "images"), _find(d, split, "labels")
    iraw, lraw = _read_bytes(ipath), _read_bytes(lpath)
    files = {file_key(ipath): sha256_bytes(iraw), file_key(lpath): sha256_bytes(lraw)}
    x = read_idx_images(ipath, raw=iraw)
    y = read_idx_labels(lpath, None, raw=lraw)
    if len(x) != len(y):
        raise CorruptDataset(f"{ipath} has {len(x)} images but {lpath} has {len(y)} labels")
    if y.size and (int(y.min()) < 1 or int(y.max()) > 26):
        raise CorruptDataset(f"{lpath}: labels {int(y.min())}..{int(y.max())}; EMNIST Letters labels "
                             f"are 1..26 (another EMNIST split's file?)")
    # Swap rows and columns (stored column-major); the copy also makes the array writable for torch.
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).unsqueeze(1)
    yt = torch.from_numpy(y.astype(np.int64) - 1)
    return ArrayDataset(NAME, xt, yt, 26, source=source, class_names=EMNIST_LETTERS_CLASSES, files=files)


# SHA-256 and size of NIST's gzip.zip as recorded by TensorFlow Datasets
# (url_checksums/emnist.txt, for the www.itl.nist.gov address, which now redirects to
# biometrics.nist.gov); torchvision's EMNIST checks the same file by MD5,
# 58c8d27c78d21e728a6bc7b3cc06412e.
EMNIST_LETTERS_FILES = FileSet(
    NAME,
    (RemoteFile(ZIP, ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                      "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip"),
                "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e", 561753746),),
    has_emnist_letters_split,
    f"{NAME}-{{train,test}}-{{images-idx3,labels-idx1}}-ubyte (each optionally .gz), or NIST's {ZIP}",
    layouts=("gzip", "EMNIST/raw"), missing=missing_emnist_letters_files)


def load_emnist_letters(cfg: DataConfig, split: str) -> ArrayDataset:
    """EMNIST Letters: ``uint8 (N, 1, 28, 28)`` upright, 26 classes (A/a .. Z/z); 124800 / 20800."""
    return load_emnist_letters_dir(locate(EMNIST_LETTERS_FILES, cfg, split), split)
