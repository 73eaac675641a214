"""``folder:PATH``: every image file under a directory.

- Files: ``.png .jpg .jpeg .bmp .webp`` (any case) anywhere under PATH; hidden files and
  directories are skipped.
- Labels: when images sit in sub-directories, the name of the immediate sub-directory of PATH is the
  class (classes sorted by name); when all images sit directly in PATH the set is unlabelled.
  Images both directly in PATH and in sub-directories is ambiguous and refused.
- Pixels: converted to RGB, or to greyscale ``L`` when every file is greyscale; centre-cropped to
  a square and resized (bilinear) to ``image_size`` (default 64). ``uint8 (N, C, S, S)``.
- Split: files are ordered by a hash of their relative path (deterministic, independent of the
  file system's listing order and of the other files); the last 10 % of that order is the test
  split. The hash order also shuffles classes, so ``data.limit`` takes a mix of classes.
- Provenance: ``files`` is ``{absolute PATH: digest}``, the digest being the SHA-256 over the
  split's ``(relative path, file SHA-256)`` pairs sorted by path (``provenance.folder_digest``).
"""
from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, CorruptDataset, DatasetNotFound
from .core import ArrayDataset, DataConfig
from .provenance import file_key, folder_digest, sha256_bytes

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_SIZE", "scan_folder", "load_folder", "load_folder_dataset"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEFAULT_SIZE = 64
TEST_FRACTION = 10  # 1 in 10 files is a test file
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def scan_folder(root: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...]]:
    """All image files under ``root`` in split order, their class indices (or None), class names."""
    if not root.is_dir():
        raise DatasetNotFound(f"folder dataset: {root} is not a directory")
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise DatasetNotFound(f"folder dataset: no image files ({', '.join(IMAGE_EXTENSIONS)}) "
                              f"under {root}")
    rel = {p: p.relative_to(root).as_posix() for p in files}
    files.sort(key=lambda p: hashlib.sha1(rel[p].encode()).hexdigest())
    top = [rel[p].split("/")[0] for p in files]
    nested = ["/" in rel[p] for p in files]
    if not any(nested):
        return files, None, ()
    if not all(nested):
        loose = next(rel[p] for p, n in zip(files, nested) if not n)
        raise ConfigError(f"data.name: folder {root} has images both directly inside (e.g. {loose}) "
                          f"and in class sub-directories; move them into sub-directories (labelled) "
                          f"or all into {root} (unlabelled)")
    classes = tuple(sorted(set(top)))
    index = {c: i for i, c in enumerate(classes)}
    return files, [index[t] for t in top], classes


def _split_slice(n: int, split: str) -> slice:
    n_test = max(1, n // TEST_FRACTION) if n >= 2 else 0
    return slice(0, n - n_test) if split == "train" else slice(n - n_test, n)


def _mode(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.mode
    except (UnidentifiedImageError, OSError) as e:
        raise CorruptDataset(f"{path}: not a readable image ({e})") from e


def _load(path: Path, mode: str, size: int) -> tuple[np.ndarray, str]:
    """One image ``uint8 (C, size, size)`` and the SHA-256 of the file's bytes (read once)."""
    from PIL import Image, UnidentifiedImageError

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CorruptDataset(f"{path}: cannot read ({e.strerror or e})") from e
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im = im.convert(mode)
            w, h = im.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))
            if s != size:
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise CorruptDataset(f"{path}: not a readable image ({e})") from e
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), sha256_bytes(raw)


def load_folder(root: str | Path, split: str, image_size: int | None = None) -> ArrayDataset:
    """``split`` of the images under ``root``: ``uint8 (N, 1 or 3, S, S)``, S = image_size or 64.

    ``files`` holds one entry, ``{absolute root: folder_digest}`` over the split's files (their
    paths relative to ``root`` and SHA-256s), rather than one entry per image.
    """
    root = Path(root).expanduser()
    size = image_size or DEFAULT_SIZE
    files, labels, classes = scan_folder(root)
    sl = _split_slice(len(files), split)
    if sl.stop - sl.start == 0:
        raise DatasetNotFound(f"folder dataset: {root} has {len(files)} image(s), too few for a "
                              f"{split} split")
    # Pillow decodes with the GIL released, so threads give a real speed-up on many files.
    # The colour mode must be decided over *all* files so that both splits agree.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        modes = set(pool.map(_mode, files))
        mode = "L" if modes <= _GREY_MODES else "RGB"
        loaded = list(pool.map(lambda p: _load(p, mode, size), files[sl]))
    x = torch.from_numpy(np.stack([a for a, _ in loaded]))
    y = None if labels is None else torch.tensor(labels[sl], dtype=torch.int64)
    digest = folder_digest((p.relative_to(root).as_posix(), h) for p, (_, h) in zip(files[sl], loaded))
    return ArrayDataset(f"folder:{root}", x, y, len(classes) if labels is not None else None,
                        source=str(root), class_names=classes, files={file_key(root): digest})


def load_folder_dataset(cfg: DataConfig, split: str) -> ArrayDataset:
    """Registry adapter: ``cfg.name == "folder:PATH"``."""
    return load_folder(cfg.name.split(":", 1)[1], split, cfg.image_size)
