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

from ..errors import ConfigError, CorruptDataset, DatasetNotFound, short_repr
from ..fileio import atomic_write, cache_root
from .core import ArrayDataset

__all__ = ["PREFIX", "as_split", "load_arrays", "store_arrays", "arrays_meta"]

PREFIX = "tensors:"


def as_split(x: Any, y: Any = None, what: str = "data") -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``(x, y, kind)`` in the library's format from a tensor, an array or a Dataset; a clear
    ``ConfigError`` naming ``what`` for anything else: a ragged or non-numeric array, an empty set,
    a wrong shape or dtype, NaN or infinite values (never replaced: a NaN pixel would silently
    train as black), labels that are not integers from 0, a Dataset whose items are not ``x`` or
    ``(x, y)``."""
    if isinstance(x, torch.utils.data.Dataset) and not isinstance(x, torch.Tensor):
        if y is not None:
            raise ConfigError(f"{what}: a Dataset carries its own labels; do not pass labels as well")
        x, y = _collect(x, what)
    x = _numbers(x, what)
    if x.ndim >= 1 and len(x) == 0:
        raise ConfigError(f"{what}: no examples (shape {tuple(x.shape)})")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim not in (2, 4):
        raise ConfigError(f"{what}: expected images (N, C, H, W) / (N, H, W) or vectors (N, D); got shape "
                          f"{tuple(x.shape)}")
    if x.numel() == 0:
        raise ConfigError(f"{what}: each example of shape {tuple(x.shape[1:])} holds no values")
    if x.is_floating_point():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            first = int(bad.reshape(len(x), -1).any(1).nonzero()[0, 0])
            raise ConfigError(f"{what}: {int(bad.sum()):,} of {x.numel():,} values are NaN or infinite (the "
                              f"first in example {first}); genae does not replace them: fix or drop those "
                              f"examples (e.g. x[torch.isfinite(x).flatten(1).all(1)])")
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
    else:
        if not x.is_floating_point():
            raise ConfigError(f"{what}: vectors (N, D) must be floats; got {x.dtype}")
        if not bool(torch.isfinite(x.float()).all()):  # finite in float64, overflowing in float32
            raise ConfigError(f"{what}: vectors hold values beyond float32's range (|v| > 3.4e38)")
        kind, x = "vector", x.float().contiguous()
    if y is not None:
        y = _numbers(y, f"{what} labels")
        if y.ndim != 1 or len(y) != len(x):
            raise ConfigError(f"{what}: labels must be (N,) = ({len(x)},); got {tuple(y.shape)}")
        if y.is_floating_point() or y.dtype == torch.bool or int(y.min()) < 0:
            raise ConfigError(f"{what}: labels must be integers from 0")
        y = y.long()
    return x.contiguous(), y, kind


def _numbers(v: Any, what: str) -> torch.Tensor:
    """``v`` (a tensor, an array or nested lists) as a CPU tensor of numbers; a ``ConfigError`` for
    ragged nested lists, objects, strings and complex numbers (which NumPy or torch would refuse
    with a traceback, or keep as objects)."""
    if isinstance(v, torch.Tensor):
        t = v.detach()
        if t.layout != torch.strided:
            raise ConfigError(f"{what}: a {t.layout} tensor; give a dense one (.to_dense())")
        t = t.cpu()
    else:
        try:
            a = np.asarray(v)
        except (ValueError, TypeError) as e:  # NumPy >= 1.24 refuses ragged nested lists
            raise ConfigError(f"{what}: not an array of numbers of one shape (ragged lists?): "
                              f"{str(e).splitlines()[0][:120]}") from None
        if a.dtype.kind not in "biuf":
            raise ConfigError(f"{what}: an array of {a.dtype} ({'objects, or lists of different lengths' if a.dtype == object else 'not numbers'}); "
                              f"give numbers of one shape, e.g. np.stack(...)")
        t = torch.from_numpy(np.ascontiguousarray(a))
    if t.is_complex():
        raise ConfigError(f"{what}: complex numbers ({t.dtype}); give real ones")
    return t


def _collect(ds: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A map-style Dataset's items ``x`` or ``(x, y)``, in order, as stacked tensors."""
    if isinstance(ds, torch.utils.data.IterableDataset):
        raise ConfigError(f"{what}: an IterableDataset has no length or order; collect it into a tensor "
                          "first, e.g. torch.stack(list(ds))")
    try:
        n = len(ds)
    except TypeError:
        raise ConfigError(f"{what}: the Dataset has no len(); give a map-style Dataset or a tensor") from None
    if n == 0:
        raise ConfigError(f"{what}: the Dataset is empty")
    items = [ds[i] for i in range(n)]
    xs, ys = [], []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            keys = ", ".join(map(str, list(item)[:6]))
            raise ConfigError(f"{what}: the Dataset yields dicts (keys {keys}); genae needs items x or (x, y): "
                              f"wrap it, e.g. a Dataset returning (d['image'], d['label'])")
        labelled = isinstance(item, (tuple, list))
        if labelled and len(item) != 2:
            raise ConfigError(f"{what}: item {i} of the Dataset is a {type(item).__name__} of {len(item)} "
                              "values; genae needs x or (x, y)")
        if i and labelled != bool(ys):
            raise ConfigError(f"{what}: item {i} of the Dataset is {'(x, y)' if labelled else 'x alone'}, "
                              f"item 0 {'x alone' if labelled else '(x, y)'}; every item must be alike")
        xi = _numbers(item[0] if labelled else item, f"{what}: item {i}")
        if xs and xi.shape != xs[0].shape:
            raise ConfigError(f"{what}: the Dataset's items differ in shape: item 0 is {tuple(xs[0].shape)}, "
                              f"item {i} is {tuple(xi.shape)}")
        xs.append(xi)
        if labelled:
            label = _numbers(item[1], f"{what}: the label of item {i}")
            if label.numel() != 1 or label.is_floating_point() or label.dtype == torch.bool:
                raise ConfigError(f"{what}: the label of item {i} must be one integer, got {short_repr(item[1])}")
            ys.append(int(label.reshape(())))
    return torch.stack(xs), (torch.as_tensor(ys) if ys else None)


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
    from ..schema import Int, Opt, Record, Str, check

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        found = {"kind": meta.get("kind", "image"), "num_classes": json.loads(meta.get("num_classes", "null"))}
    except Exception as e:  # a damaged header: loading reports it with the file's name
        raise CorruptDataset(f"{path} is not a genae array file ({str(e)[:200]})") from None
    return check(found, Record({"kind": Str(("image", "vector")), "num_classes": Opt(Int(1))}), f"{path} (metadata)",
                 error=CorruptDataset)


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
