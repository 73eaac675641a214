"""Your own data from Python: tensors, NumPy arrays or a ``torch.utils.data.Dataset``.

``store_arrays`` turns what a researcher has in memory into the library's split format and writes
it once, as safetensors, into ``$GENAE_CACHE/arrays/<sha256 of the contents>/`` (``train`` and
optionally ``test``); the dataset is then named ``tensors:<that directory>``, so a run trained on
it resumes, samples and evaluates from the command line like any other, and ``RUN/data.json``
records the files' SHA-256.

Accepted forms (``x`` of ``N`` examples, ``y`` optional ``(N,)`` integer labels from 0):

- images ``(N, C, H, W)`` or ``(N, H, W)`` (one channel is added), ``uint8`` 0..255 or floats in
  [0, 1] (quantised to ``uint8``, exactly for data that came from 8-bit images), C = 1 or 3;
- vectors ``(N, D)``, any float dtype (stored as float32);
- a ``torch.utils.data.Dataset`` whose items are ``x`` or ``(x, y)`` (collected in order).

Kept as ``uint8`` images so the trainer converts each batch to the method's input range exactly as
for the built-in datasets.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, CorruptDataset, DatasetNotFound
from ..fileio import atomic_write, cache_root
from .core import ArrayDataset

__all__ = ["PREFIX", "as_split", "load_arrays", "store_arrays", "arrays_meta"]

PREFIX = "tensors:"


def as_split(x: Any, y: Any = None, what: str = "data") -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``(x, y, kind)`` in the library's format from a tensor, an array or a Dataset; a clear
    ``ConfigError`` naming ``what`` and the shape for anything else."""
    if isinstance(x, torch.utils.data.Dataset) and not isinstance(x, torch.Tensor):
        if y is not None:
            raise ConfigError(f"{what}: a Dataset carries its own labels; do not pass labels as well")
        items = [x[i] for i in range(len(x))]
        if not items:
            raise ConfigError(f"{what}: the Dataset is empty")
        if isinstance(items[0], (tuple, list)):
            x = torch.stack([torch.as_tensor(np.asarray(it[0])) for it in items])
            y = torch.as_tensor([int(it[1]) for it in items])
        else:
            x = torch.stack([torch.as_tensor(np.asarray(it)) for it in items])
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim == 4:
        if x.shape[1] not in (1, 3):
            raise ConfigError(f"{what}: images must be (N, C, H, W) with C = 1 or 3, or (N, H, W); got "
                              f"{tuple(x.shape)} (channels-last? use x.permute(0, 3, 1, 2))")
        kind = "image"
        if x.dtype != torch.uint8:
            if not x.is_floating_point():
                raise ConfigError(f"{what}: images must be uint8 0..255 or floats in [0, 1]; got {x.dtype}")
            lo, hi = float(x.min()), float(x.max())
            if lo < 0 or hi > 1:
                raise ConfigError(f"{what}: float images must lie in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]")
            x = (x.float() * 255.0).round().to(torch.uint8)
    elif x.ndim == 2:
        if not x.is_floating_point():
            raise ConfigError(f"{what}: vectors (N, D) must be floats; got {x.dtype}")
        kind, x = "vector", x.float().contiguous()
    else:
        raise ConfigError(f"{what}: expected images (N, C, H, W) / (N, H, W) or vectors (N, D); got shape "
                          f"{tuple(x.shape)}")
    if len(x) == 0:
        raise ConfigError(f"{what}: no examples")
    if y is not None:
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).detach().cpu()
        if y.ndim != 1 or len(y) != len(x):
            raise ConfigError(f"{what}: labels must be (N,) = ({len(x)},); got {tuple(y.shape)}")
        if y.is_floating_point() or y.dtype == torch.bool or int(y.min()) < 0:
            raise ConfigError(f"{what}: labels must be integers from 0")
        y = y.long()
    return x.contiguous(), y, kind


def store_arrays(train: tuple[torch.Tensor, torch.Tensor | None, str],
                 test: tuple[torch.Tensor, torch.Tensor | None, str] | None = None,
                 root: str | Path | None = None) -> Path:
    """Write the splits (from ``as_split``) as ``train.safetensors`` / ``test.safetensors`` into
    ``root`` (default ``$GENAE_CACHE/arrays/<sha256[:16] of the contents>``) and return it; the
    dataset name is ``tensors:<returned path>``. Identical data reuses the same directory."""
    from safetensors.torch import save

    if test is not None and (test[2] != train[2] or test[0].shape[1:] != train[0].shape[1:]):
        raise ConfigError(f"test data {tuple(test[0].shape)} does not match training data {tuple(train[0].shape)}")
    if test is not None and (test[1] is None) != (train[1] is None):
        raise ConfigError("give labels for both the training and the test data, or for neither")
    k = None if train[1] is None else int(max(train[1].max(), test[1].max() if test else 0)) + 1
    blobs = {}
    for split, part in (("train", train), ("test", test)):
        if part is None:
            continue
        x, y, kind = part
        tensors = {"x": x} if y is None else {"x": x, "y": y}
        blobs[split] = save(tensors, metadata={"kind": kind, "num_classes": json.dumps(k)})
    if root is None:
        digest = hashlib.sha256(b"".join(blobs[s] for s in sorted(blobs))).hexdigest()[:16]
        root = cache_root() / "arrays" / digest
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split, blob in blobs.items():
        path = root / f"{split}.safetensors"
        if not (path.is_file() and path.read_bytes() == blob):
            atomic_write(path, blob)
    return root


def arrays_meta(root: Path) -> dict[str, Any]:
    """``{"kind", "num_classes"}`` of the arrays in ``root`` (read from the training file's header),
    or image/labelled defaults when the file is not there yet (loading then says what is missing)."""
    from safetensors import safe_open

    path = Path(root) / "train.safetensors"
    if not path.is_file():
        return {"kind": "image", "num_classes": None}
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return {"kind": meta.get("kind", "image"), "num_classes": json.loads(meta.get("num_classes", "null"))}
    except Exception as e:  # a damaged header: loading reports it with the file's name
        raise CorruptDataset(f"{path} is not a genae array file ({e})") from None


def load_arrays(root: Path, split: str) -> ArrayDataset:
    """The ``split`` stored by ``store_arrays`` in ``root``."""
    from safetensors.torch import load

    path = Path(root) / f"{split}.safetensors"
    if not path.is_file():
        raise DatasetNotFound(f"tensors:{root}: no {split} split ({path} is missing)"
                              + ("; pass test= to genae.train to evaluate on held-out data" if split == "test" else ""))
    data = path.read_bytes()
    try:
        tensors = load(data)
        meta = arrays_meta(root)
    except Exception as e:
        raise CorruptDataset(f"{path} is damaged ({e})") from None
    x, y = tensors.get("x"), tensors.get("y")
    if x is None:
        raise CorruptDataset(f"{path} holds no 'x' tensor")
    return ArrayDataset(f"tensors:{root}", x, y, meta["num_classes"], kind=meta["kind"], source=str(path),
                        files={str(path.resolve()): hashlib.sha256(data).hexdigest()})
