"""Trainer state on disk in formats that cannot run code: tensors in safetensors, the rest JSON.

A trainer state (optimizer and schedule state dicts, sampler position, AMP scaler, the torch, NumPy
and Python RNG states, the step) is a tree of dicts, lists, tuples, numbers, strings, ``None``,
tensors and NumPy arrays. ``encode`` splits it into

- ``tensors``: ``{"t0": tensor, ...}`` written with safetensors (a header of JSON plus raw bytes);
- ``tree``: the same structure as JSON, each tensor replaced by ``{"$tensor": "t0"}``, each NumPy
  array by ``{"$ndarray": "t1", "dtype": "uint32"}``, each tuple by ``{"$tuple": [...]}``, and each
  dict whose keys are not all strings (optimizer states are keyed by parameter index) by
  ``{"$items": [[key, value], ...]}``.

``decode`` inverts it exactly: Python floats survive JSON bit for bit (``repr`` round-trips;
``NaN``/``Infinity`` are written as JSON's common extension), integers are arbitrary precision,
and NumPy arrays are stored as tensors of the same dtype, so a resumed run is bit-identical.
Nothing in either file can name a Python object to build, so loading a crafted file can fail but
never execute code.

Checkpoints written before this format hold a pickled ``trainer.pt``; ``load_legacy`` reads it
with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler, allowing only the NumPy
array/dtype/scalar constructors those files contain (NumPy's RNG state is a ``uint32`` array).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors, save as save_tensors

from .errors import RunFileError

__all__ = ["StateFileError", "decode", "dumps", "encode", "load_legacy", "loads"]

_TAGS = ("$tensor", "$ndarray", "$tuple", "$items", "$npscalar")


class StateFileError(RunFileError):
    """A state file that is damaged, crafted or not in this format (the message names the file)."""


def encode(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """``tree`` -> (JSON-able tree, ``{name: tensor}``). Raises TypeError naming an unsupported leaf."""
    tensors: dict[str, torch.Tensor] = {}

    def put(t: torch.Tensor) -> str:
        name = f"t{len(tensors)}"
        tensors[name] = t.detach().to("cpu").contiguous().clone()
        return name

    def enc(v: Any, where: str) -> Any:
        if isinstance(v, np.generic):  # before float: np.float64 is a float subclass
            return {"$npscalar": v.item(), "dtype": str(v.dtype)}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, torch.Tensor):
            return {"$tensor": put(v)}
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError(f"{where}: object arrays cannot be stored")
            return {"$ndarray": put(torch.from_numpy(np.ascontiguousarray(v))), "dtype": str(v.dtype)}
        if isinstance(v, tuple):
            return {"$tuple": [enc(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [enc(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            if all(isinstance(k, str) and k not in _TAGS for k in v):
                return {k: enc(x, f"{where}.{k}") for k, x in v.items()}
            return {"$items": [[enc(k, f"{where} key"), enc(x, f"{where}[{k!r}]")] for k, x in v.items()]}
        raise TypeError(f"{where}: cannot store a {type(v).__name__} in a trainer state")

    return enc(tree, "state"), tensors


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of ``encode``. Raises ``KeyError``/``ValueError``/``TypeError`` on a malformed tree."""
    if isinstance(tree, list):
        return [decode(x, tensors) for x in tree]
    if not isinstance(tree, dict):
        return tree
    if "$tensor" in tree:
        return tensors[tree["$tensor"]]
    if "$ndarray" in tree:
        return tensors[tree["$ndarray"]].numpy().astype(_dtype(tree["dtype"]), copy=True)
    if "$npscalar" in tree:
        return _dtype(tree["dtype"]).type(tree["$npscalar"])
    if "$tuple" in tree:
        return tuple(decode(x, tensors) for x in tree["$tuple"])
    if "$items" in tree:
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in tree["$items"]}
    return {k: decode(v, tensors) for k, v in tree.items()}


def _dtype(name: Any) -> np.dtype:
    """A plain numeric NumPy dtype named by ``name`` (what ``encode`` writes); anything else, e.g.
    ``object`` or a sub-array dtype such as ``(1000000000,)f8`` that would allocate per element,
    is a ``ValueError``."""
    dt = np.dtype(name) if isinstance(name, str) else None
    if dt is None or dt.kind not in "biuf" or dt.subdtype is not None or dt.names is not None:
        raise ValueError(f"{str(name)[:40]!r} is not a numeric dtype")
    return dt


def _hashable(k: Any) -> Any:
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


def dumps(tree: Any) -> tuple[bytes, bytes]:
    """``tree`` -> (JSON bytes, safetensors bytes)."""
    plain, tensors = encode(tree)
    return json.dumps(plain, indent=None, separators=(",", ":")).encode(), save_tensors(tensors)


def loads(json_bytes: bytes, tensor_bytes: bytes, source: str) -> Any:
    """Inverse of ``dumps``; any damage raises ``StateFileError`` naming ``source``."""
    try:
        tensors = load_tensors(tensor_bytes)
        return decode(json.loads(json_bytes), tensors)
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as e:
        raise StateFileError(f"{source} is damaged or not a genae trainer state "
                             f"({type(e).__name__}: {str(e)[:200]})") from None


def _numpy_globals() -> list:
    """The NumPy constructors found in legacy pickles: array rebuild, dtypes, scalars."""
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    allowed += [type(np.dtype(c)) for c in ("uint8", "uint32", "int32", "int64", "float32", "float64",
                                            "bool")]
    return allowed


def load_legacy(path: Path) -> Any:
    """A pickled ``trainer.pt`` of a checkpoint written before the safetensors+JSON format, read
    with PyTorch's restricted (weights-only) unpickler: a pickle that names any other callable is
    refused with ``StateFileError`` and nothing in it runs."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler raises UnpicklingError, RuntimeError, EOFError, ...
        first = str(e).strip().splitlines()
        why = next((line for line in first if "Unsupported global" in line or "GLOBAL" in line),
                   first[0] if first else type(e).__name__)
        raise StateFileError(f"{path} was refused: it is damaged or holds more than tensors, numbers "
                             f"and strings, so it is not loaded ({why.strip()[:300]})") from None
