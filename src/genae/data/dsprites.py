"""dSprites (Matthey et al. 2017): ``dsprites`` renders the official factor grid procedurally;
``dsprites-npz`` reads the official ``.npz`` where a user has it.

The grid (the README of ``deepmind/dsprites-dataset``): shape {square, ellipse, heart} × scale
(6 values, linspace(0.5, 1)) × orientation (40 values, linspace(0, 2π) — the official
``latents_values`` include both 0 and 2π, so the last orientation repeats the first) × posX (32,
linspace(0, 1)) × posY (32) = 737,280 binary 64×64 images, stored in that order with posY varying
fastest. Grid index i therefore names the same factors here and in the official file.

Images are ``uint8 (N, 1, 64, 64)`` in {0, 255} (genae's uint8 convention; the official file holds
0/1); labels the shape index (3 classes); factors ``float32 (N, 5)`` named shape (index 0, 1, 2),
scale, orientation (radians), posX, posY (in [0, 1]).

Splits (both datasets): a permutation of the 737,280 grid indices seeded by ``data.seed``; the test
split is its last 10,000 cells, the train split its first ``data.n`` (default 60,000; at most
727,280, so the splits never overlap). Only the chosen cells are rendered.

Rendering (``render_dsprites``), a reconstruction: the official generator is not published, so
these are choices, binary by point-sampling each pixel centre (no anti-aliasing, like the
official binary images):

- canvas coordinates in pixels, pixel (row r, column c) has its centre at (c + ½, r + ½);
- the sprite's centre is (16 + 32·posX, 16 + 32·posY): posY grows downwards (row index), steps of
  32/31 ≈ 1.03 px, so every shape stays inside the canvas at every scale and orientation;
- each shape fills a square bounding box of half-side 10·scale px at orientation 0 (20 px wide at
  scale 1); square: the box itself; ellipse: semi-axes 10·scale (horizontal) and 5·scale
  (vertical); heart: the curve (X² + Y² − 1)³ ≤ X²Y³ (tip down), its bounding box
  [−1.139, 1.139] × [−1, 1.2365] stretched onto the sprite's box;
- orientation θ rotates the sprite counter-clockwise as displayed, about its centre.

Where this differs from the official data: the official pixel sizes, the ellipse's aspect ratio,
the heart's outline, the position margins and the rasteriser's edge rule are not documented, so
individual images differ from the official ones by edge pixels and by a few pixels of size and
margin; the factor grid, its order and its values are the official ones.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, CorruptDataset
from .core import ArrayDataset, DataConfig, derive_seed
from .download import FileSet, locate
from .provenance import file_key

__all__ = ["DSPRITES_SHAPES", "DSPRITES_FACTOR_NAMES", "DSPRITES_SIZES", "DSPRITES_NPZ", "DSPRITES_NPZ_URL",
           "DSPRITES_NPZ_MD5", "DSPRITES_NPZ_FILES", "dsprites_factor_values", "dsprites_factors",
           "dsprites_split_indices", "render_dsprites", "render_dsprites_indices", "load_dsprites",
           "read_dsprites_npz", "load_dsprites_npz", "is_official_dsprites_npz"]

DSPRITES_SHAPES = ("square", "ellipse", "heart")
DSPRITES_FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
DSPRITES_SIZES = (3, 6, 40, 32, 32)
DSPRITES_TOTAL = 737280
DSPRITES_TRAIN, DSPRITES_TEST = 60000, 10000
CANVAS = 64
HALF_SIZE = 10.0          # half-side in px of the sprite's box at scale 1
POS_LOW, POS_SPAN = 16.0, 32.0
ELLIPSE_MINOR = 0.5       # minor / major semi-axis
HEART_X, HEART_Y0, HEART_Y = 1.139, 0.11825, 1.11825   # box of the heart curve: x ±1.139, y [−1, 1.2365]
CHUNK = 1024              # images rendered at once (bounds the float64 intermediates to ~30 MB each)

DSPRITES_NPZ = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_NPZ_URL = f"https://github.com/deepmind/dsprites-dataset/raw/master/{DSPRITES_NPZ}"
#: MD5 of the official file as published by several independent loaders (e.g. the dSprites
#: classes of the ``latte`` and ``vaetc`` packages and torchvision-style ``DSprites`` datasets).
#: No SHA-256 of the .npz is published that we could find (TensorFlow Datasets lists only the .hdf5).
DSPRITES_NPZ_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"


def dsprites_factor_values() -> tuple[torch.Tensor, ...]:
    """The official values of each factor, float64: shape indices (0, 1, 2), scale (6),
    orientation (40, 0 to 2π inclusive), posX (32), posY (32)."""
    return (torch.arange(3, dtype=torch.float64), torch.linspace(0.5, 1.0, 6, dtype=torch.float64),
            torch.linspace(0.0, 2 * math.pi, 40, dtype=torch.float64),
            torch.linspace(0.0, 1.0, 32, dtype=torch.float64), torch.linspace(0.0, 1.0, 32, dtype=torch.float64))


def _unravel(index: torch.Tensor) -> torch.Tensor:
    """``(N,)`` grid indices -> ``(N, 5)`` int64 class of each factor (posY fastest)."""
    out, rest = [], index.long()
    for size in reversed(DSPRITES_SIZES):
        out.append(rest % size)
        rest = rest // size
    return torch.stack(out[::-1], 1)


def dsprites_factors(index: torch.Tensor) -> torch.Tensor:
    """``(N,)`` grid indices -> ``float64 (N, 5)`` factor values (shape as its index)."""
    classes = _unravel(index)
    return torch.stack([v[classes[:, k]] for k, v in enumerate(dsprites_factor_values())], 1)


def render_dsprites(shape: torch.Tensor, scale: torch.Tensor, orientation: torch.Tensor,
                    pos_x: torch.Tensor, pos_y: torch.Tensor) -> torch.Tensor:
    """Render sprites from factor values (any values, not only the grid's): each argument ``(N,)``
    (shape an index 0/1/2). Returns ``uint8 (N, 1, 64, 64)`` in {0, 255}. Deterministic (float64
    arithmetic, no randomness); see the module docstring for the geometry."""
    n = shape.shape[0]
    out = torch.empty(n, 1, CANVAS, CANVAS, dtype=torch.uint8)
    centres = torch.arange(CANVAS, dtype=torch.float64) + 0.5
    for lo in range(0, n, CHUNK):
        sl = slice(lo, lo + CHUNK)
        col = lambda t: t[sl].to(torch.float64).view(-1, 1, 1)  # noqa: E731
        half = HALF_SIZE * col(scale)
        dx = centres.view(1, 1, -1) - (POS_LOW + POS_SPAN * col(pos_x))
        dy_up = (POS_LOW + POS_SPAN * col(pos_y)) - centres.view(1, -1, 1)   # rows grow downwards
        th = col(orientation)
        c, s = torch.cos(th), torch.sin(th)
        # Into the sprite's frame: rotate the pixel offset by −θ, in units of the half-size.
        u = (c * dx + s * dy_up) / half
        v = (-s * dx + c * dy_up) / half
        # Each shape's test only on its own sprites (the heart's is the costly one).
        k = shape[sl]
        mask = torch.zeros(u.shape, dtype=torch.bool)
        sq, el, he = (k == 0).nonzero().squeeze(1), (k == 1).nonzero().squeeze(1), (k == 2).nonzero().squeeze(1)
        mask[sq] = torch.maximum(u[sq].abs(), v[sq].abs()) <= 1.0
        mask[el] = u[el].pow(2) + (v[el] / ELLIPSE_MINOR).pow(2) <= 1.0
        hx, hy = HEART_X * u[he], HEART_Y0 + HEART_Y * v[he]
        # the box test drops the curve's other, far-away branches
        mask[he] = (((hx.pow(2) + hy.pow(2) - 1.0).pow(3) <= hx.pow(2) * hy.pow(3))
                    & (u[he].abs() <= 1.0) & (v[he].abs() <= 1.0))
        out[sl, 0] = mask.to(torch.uint8) * 255
    return out


def render_dsprites_indices(index: torch.Tensor) -> torch.Tensor:
    """``(N,)`` grid indices -> their images, ``uint8 (N, 1, 64, 64)``."""
    f = dsprites_factors(index)
    return render_dsprites(f[:, 0].long(), f[:, 1], f[:, 2], f[:, 3], f[:, 4])


def dsprites_split_indices(seed: int, split: str, n: int | None = None) -> torch.Tensor:
    """The grid indices of ``split``: a permutation of all 737,280 cells seeded by
    ``derive_seed(seed, "dsprites")``; test = its last 10,000 entries, train = its first ``n``
    (default 60,000; at most 727,280). ``int64 (N,)`` in permutation order."""
    limit = DSPRITES_TOTAL - DSPRITES_TEST
    if n is not None and n > limit:
        raise ConfigError(f"data.n = {n} exceeds the {limit} dSprites cells outside the test split")
    g = torch.Generator().manual_seed(derive_seed(seed, "dsprites"))
    perm = torch.randperm(DSPRITES_TOTAL, generator=g)
    return perm[-DSPRITES_TEST:] if split == "test" else perm[:n or DSPRITES_TRAIN]


def _dataset(name: str, x: torch.Tensor, index: torch.Tensor, source: str,
             files: dict[str, str] | None = None) -> ArrayDataset:
    factors = dsprites_factors(index).float()
    return ArrayDataset(name, x, _unravel(index)[:, 0], 3, factors=factors,
                        factor_names=DSPRITES_FACTOR_NAMES, source=source, class_names=DSPRITES_SHAPES,
                        files=files or {})


def load_dsprites(cfg: DataConfig, split: str) -> ArrayDataset:
    """``dsprites``: the split's cells (``dsprites_split_indices(cfg.seed, split, cfg.n)``)
    rendered by ``render_dsprites``; nothing is downloaded."""
    index = dsprites_split_indices(cfg.seed, split, cfg.n)
    return _dataset("dsprites", render_dsprites_indices(index), index, "generated")


# --- the official .npz ---------------------------------------------------------------------------

def _has_npz(d: Path, split: str) -> bool:
    return (d / DSPRITES_NPZ).is_file()


DSPRITES_NPZ_FILES = FileSet(
    "dsprites", (), _has_npz,
    f"{DSPRITES_NPZ} (the official file, {DSPRITES_NPZ_URL}; not downloaded by genae)")


def _digests(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def is_official_dsprites_npz(path: str | Path) -> bool:
    """Whether the file at ``path`` has the official file's MD5 (``DSPRITES_NPZ_MD5``)."""
    return _digests(Path(path))[1] == DSPRITES_NPZ_MD5


def read_dsprites_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a dSprites ``.npz`` (``np.load`` with ``allow_pickle=False``: the pickled ``metadata``
    entry is never touched). Returns ``uint8 (N, 64, 64)`` images in {0, 1} and the ``int64 (N,)``
    grid index of each row, from ``latents_classes`` (columns colour, shape, scale, orientation,
    posX, posY). The rows may be any subset of the grid, in any order; ``latents_values`` is
    checked against the official values. Raises ``CorruptDataset`` naming the problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"imgs", "latents_classes", "latents_values"} - set(f.files)
            if missing:
                raise CorruptDataset(f"{path}: not a dSprites file, missing {', '.join(sorted(missing))}")
            imgs, classes, values = f["imgs"], f["latents_classes"], f["latents_values"]
    except (OSError, ValueError, EOFError) as e:  # zipfile errors are OSError/ValueError subclasses
        raise CorruptDataset(f"{path}: cannot read as .npz ({e})") from e
    n = imgs.shape[0]
    if imgs.shape[1:] != (CANVAS, CANVAS) or classes.shape != (n, 6) or values.shape != (n, 6):
        raise CorruptDataset(f"{path}: imgs {imgs.shape}, latents_classes {classes.shape}, latents_values "
                             f"{values.shape}; expected (N, 64, 64), (N, 6), (N, 6)")
    if imgs.size and imgs.max() > 1:
        raise CorruptDataset(f"{path}: imgs hold values above 1 (expected binary 0/1)")
    classes = classes.astype(np.int64)
    sizes = np.array((1, *DSPRITES_SIZES))
    if n and ((classes < 0).any() or (classes >= sizes).any()):
        raise CorruptDataset(f"{path}: latents_classes outside the grid {tuple(sizes)}")
    grid = [np.ones(1), *(v.numpy() + (1 if k == 0 else 0) for k, v in enumerate(dsprites_factor_values()))]
    for k in range(6):  # shape's value is 1, 2, 3 in the official file
        if n and not np.allclose(values[:, k], grid[k][classes[:, k]], atol=1e-6):
            raise CorruptDataset(f"{path}: latents_values column {k} does not match latents_classes")
    index = np.ravel_multi_index(tuple(classes[:, 1:].T), DSPRITES_SIZES)
    if len(np.unique(index)) != n:
        raise CorruptDataset(f"{path}: a grid cell appears more than once")
    return imgs.astype(np.uint8, copy=False), index.astype(np.int64)


def load_dsprites_npz(cfg: DataConfig, split: str) -> ArrayDataset:
    """``dsprites-npz``: the official file, found like any dataset file (``--data-dir``,
    ``GENAE_DATA``, the cache ``~/.cache/genae/data/dsprites``); never downloaded.

    Rows are assigned to splits by their grid cell, exactly as ``dsprites`` assigns cells, and
    returned in the same order, so with the full file example i of each split is the same cell
    (factors, label) as in ``dsprites``; a partial file gives the rows whose cells fall in the
    split. Reading the full file takes ~3 GB of memory for the moment of the gather. Provenance
    records the file's SHA-256; its MD5 is not required to be the official one
    (``is_official_dsprites_npz`` checks it).
    """
    path = locate(DSPRITES_NPZ_FILES, cfg, split) / DSPRITES_NPZ
    sha, _ = _digests(path)
    imgs, index = read_dsprites_npz(path)
    wanted = dsprites_split_indices(cfg.seed, split, cfg.n).numpy()
    position = np.full(DSPRITES_TOTAL, -1, dtype=np.int64)
    position[wanted] = np.arange(len(wanted))
    pos = position[index]
    rows = np.nonzero(pos >= 0)[0]
    rows = rows[np.argsort(pos[rows], kind="stable")]
    x = torch.from_numpy(imgs[rows] * np.uint8(255)).unsqueeze(1)
    return _dataset("dsprites-npz", x, torch.from_numpy(index[rows]), str(path), {file_key(path): sha})
