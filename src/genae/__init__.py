"""genae: generative autoencoders and encoder/decoder games with structured latent spaces.

Re-exports (imported lazily so that ``genae --help`` does not pay for importing torch):
``METHODS``, ``DATASETS``, ``METRICS``, ``train``, ``resume``, ``load_run``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "METHODS": ("genae.methods", "METHODS"),
    "DATASETS": ("genae.data", "DATASETS"),
    "METRICS": ("genae.metrics", "METRICS"),
    "train": ("genae.train", "train"),
    "resume": ("genae.train", "resume"),
    "load_run": ("genae.runs", "load_run"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genae' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    return getattr(importlib.import_module(module), attr)
