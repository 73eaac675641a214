"""genae: generative autoencoders and encoder/decoder games with structured latent spaces.

Re-exports (imported lazily so that ``genae --help`` does not pay for importing torch):
``METHODS``, ``DATASETS``, ``METRICS``, and the Python API of ``genae.api``: ``train`` (a method on
your own data and networks, or a ``RunConfig``), ``resume``, ``load_run``, ``evaluate``; and
``derive_manifold`` (QMM eq. 3, ``genae.manifold.derive``).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "METHODS": ("genae.methods", "METHODS"),
    "DATASETS": ("genae.data", "DATASETS"),
    "METRICS": ("genae.metrics", "METRICS"),
    "train": ("genae.api", "train"),
    "resume": ("genae.api", "resume"),
    "load_run": ("genae.api", "load_run"),
    "evaluate": ("genae.api", "evaluate"),
    "derive_manifold": ("genae.manifold", "derive"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genae' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    return getattr(importlib.import_module(module), attr)
