"""Full MNIST training set made disjoint from the MNIST-10k test split, so that an encoder trained
on (almost) all of MNIST can be scored on MNIST-10k's 2,000 test digits without having seen them.

MNIST-10k (``../shared/datasets/mnist-10k``) is a subset of the official 60,000-image training set
(every one of its 10,000 images occurs there byte for byte), so training on full MNIST and testing
on MNIST-10k would leak. This writes, in IDX format under OUT:
- ``train-*``: the official training set less every image that occurs in MNIST-10k's test split
  (60,000 - 2,000 = 58,000 images);
- ``t10k-*``: MNIST-10k's test split, unchanged (2,000 images).
The official test set (``t10k`` of full MNIST) is disjoint from both and stays the paper's protocol.

    python benchmarks/mnist_disjoint.py --full ~/.cache/genae/data/mnist \\
        --mnist10k ../shared/datasets/mnist-10k --out ~/.cache/genae/data/mnist-58k
"""
from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

from genae.data.idx import load_idx_split


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """Uncompressed IDX: magic 0x0801 (labels, 1-D) or 0x0803 (images, 3-D), big-endian dims."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = 0x0800 | arr.ndim
    path.write_bytes(struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.tobytes())


def _split(d: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = load_idx_split(d, split, "mnist")
    return ds.x[:, 0].numpy(), ds.y.numpy().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", type=Path, required=True, help="official MNIST IDX directory")
    ap.add_argument("--mnist10k", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    xf, yf = _split(a.full, "train")
    xt, yt = _split(a.mnist10k, "test")
    held = {r.tobytes(): int(c) for r, c in zip(xt.reshape(len(xt), -1), yt)}
    keys = [r.tobytes() for r in xf.reshape(len(xf), -1)]
    drop = np.array([k in held for k in keys])
    found = {k for k, d in zip(keys, drop) if d}
    if len(found) != len(held):
        raise SystemExit(f"{len(held) - len(found)} MNIST-10k test images are not in {a.full}")
    # the labels must agree where the images do, or the two sets are not what they claim to be
    bad = sum(held[k] != int(c) for k, c, d in zip(keys, yf, drop) if d)
    if bad:
        raise SystemExit(f"{bad} shared images carry different labels")
    a.out.mkdir(parents=True, exist_ok=True)
    _write_idx(a.out / "train-images-idx3-ubyte", xf[~drop])
    _write_idx(a.out / "train-labels-idx1-ubyte", yf[~drop])
    _write_idx(a.out / "t10k-images-idx3-ubyte", xt)
    _write_idx(a.out / "t10k-labels-idx1-ubyte", yt)
    print(f"train {int((~drop).sum())} (dropped {int(drop.sum())}), test {len(xt)} -> {a.out}")


if __name__ == "__main__":
    main()
