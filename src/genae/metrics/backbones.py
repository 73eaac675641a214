"""Feature backbones: what FID, KID, IS and precision/recall compare samples in.

A ``Backbone`` maps examples to feature rows: ``features(x) -> (B, F)`` for one batch of images
(uint8, or float in [0, 1]) or raw vectors, and ``embed(x, batch_size)`` for a whole set (NumPy,
optionally with the class probabilities the inception score needs). ``weights_hash`` identifies
the weights (it keys the cached real-data statistics), ``protocol()`` gives the fields every
number computed from the backbone carries (``backbone``, and ``backbone_weights`` /
``backbone_test_acc`` where they exist).

- ``raw``: the vectors themselves (vector data; no weights, nothing cached).
- ``domain``: genae's small classifier trained on the dataset's training split (``domain.py``);
  penultimate activations, softmax of its K logits. Labelled images only.
- ``inception``: the standard FID Inception-v3 (``inception.py``); 2048-d pool3 features, softmax
  of its 1008 logits. Images with 1 or 3 channels.

``make_backbone(name, ...)`` builds one; ``EvalContext`` builds its backbone lazily, on first use.
A backbone's network is loaded (or trained) when it is built.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import torch

from ..errors import ConfigError
from . import domain, inception
from .base import Skip, log, to_unit

__all__ = ["IMAGE_BACKBONES", "Backbone", "DomainBackbone", "InceptionBackbone", "RawBackbone",
           "make_backbone"]

#: The backbones a user chooses between for images (vector data always uses "raw").
IMAGE_BACKBONES = ("domain", "inception")


class Backbone:
    """``features(x) -> (B, F)`` float32 on the CPU; subclasses implement ``_forward``.

    name: "raw", "domain" or "inception". weights_hash: identifies the weights ("" for none).
    device: where the network runs. cache_stats: whether real-data statistics are cached on disk.
    """

    name: str = ""
    weights_hash: str = ""
    device: str | torch.device = "cpu"
    cache_stats: bool = True

    def _forward(self, x_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch in [0, 1] (or raw vectors) on ``device`` -> (features, logits or None)."""
        raise NotImplementedError(f"{type(self).__name__} must define _forward (each backbone does)")

    @torch.no_grad()
    def features_and_probs(self, x: torch.Tensor, probs: bool = True):
        """One batch -> (features ``(B, F)``, class probabilities ``(B, K)`` or None), float32 CPU."""
        h, logits = self._forward(to_unit(x).to(self.device))
        p = torch.softmax(logits.float(), dim=1).cpu() if probs and logits is not None else None
        return h.float().cpu(), p

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """One batch of images (uint8, or float in [0, 1]) or vectors -> ``(B, F)`` float32 CPU."""
        return self.features_and_probs(x, probs=False)[0]

    def embed(self, x: torch.Tensor, batch_size: int, with_probs: bool = False):
        """A whole set in batches -> features ``(N, F)`` float32 NumPy, and class probabilities
        ``(N, K)`` (None without a classifier head) if ``with_probs``."""
        parts = [self.features_and_probs(x[i:i + batch_size], with_probs)
                 for i in range(0, len(x), batch_size)]
        f = torch.cat([h for h, _ in parts]).numpy()
        if not with_probs:
            return f
        return f, (torch.cat([p for _, p in parts]).numpy() if parts[0][1] is not None else None)

    def protocol(self) -> dict[str, Any]:
        """The backbone's fields in every number computed from it."""
        return {"backbone": self.name}


class RawBackbone(Backbone):
    """Vector data: the features are the examples, flattened, as float32."""

    name = "raw"
    cache_stats = False

    def _forward(self, x_unit):
        return x_unit.reshape(len(x_unit), -1), None


class DomainBackbone(Backbone):
    """genae's domain classifier (``domain.load_or_train_domain``: the one shipped with genae when
    ``train`` is a data set it was trained on, else trained on ``train`` once and cached; accuracy
    measured on ``test``). ``net`` is the ``DomainClassifier``."""

    name = "domain"

    def __init__(self, train, test, recipe: domain.DomainRecipe = domain.DomainRecipe(),
                 device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None,
                 progress: bool = False):
        if train.kind != "image" or train.y is None:
            raise Skip(f"the domain classifier needs labelled images; {train.name} "
                       f"{'has no labels' if train.y is None else 'is vector data'}")
        self.device = device
        self.net, self.weights_hash = domain.load_or_train_domain(train, test, recipe, device, cache_dir,
                                                                  progress=progress)
        if progress:
            log(f"feature backbone: {self.description} (weights {self.weights_hash})")

    def _forward(self, x_unit):
        h = self.net.features(x_unit)
        return h, self.net.head(h)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Predicted classes ``(N,)`` (argmax of the logits) of images, in batches, on the CPU."""
        return torch.cat([self.net(to_unit(x[i:i + batch_size]).to(self.device)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])

    @property
    def test_accuracy(self) -> float:
        return round(float(self.net.meta["test_accuracy"]), 4)

    @property
    def description(self) -> str:
        """Which classifier this is: genae's shipped one (by name) or one trained here (on which data)."""
        meta = self.net.meta
        if meta.get("shipped"):
            return f"genae's shipped domain classifier {meta['shipped']}"
        return f"a domain classifier trained here on {meta.get('train_key', '?')}"

    def identity(self) -> dict[str, Any]:
        """Which classifier a number used (``recon-class-acc``, ``imagine-class-acc``): its test
        accuracy, weights digest and name."""
        return {k: v for k, v in self.protocol().items() if k != "backbone"}

    def protocol(self) -> dict[str, Any]:
        # backbone_weights (the tensors' digest) is the backbone's identity: the same weights read
        # from the shipped file or from a cache give the same number; backbone_name says which it is
        return {"backbone": self.name, "backbone_test_acc": self.test_accuracy,
                "backbone_weights": self.weights_hash, "backbone_name": self.description}


class InceptionBackbone(Backbone):
    """The FID Inception-v3 (``inception.load_fid_inception``); ``weights_hash`` is the full
    SHA-256 of the weights file, reported by its first 16 hex digits."""

    name = "inception"

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = device
        self.net, self.weights_hash = inception.load_fid_inception(device)

    def _forward(self, x_unit):
        if x_unit.shape[1] not in (1, 3):
            raise Skip(f"the inception backbone needs 1 or 3 channels, got {x_unit.shape[1]}")
        return self.net.features_and_logits(x_unit)

    def protocol(self) -> dict[str, Any]:
        return {"backbone": self.name, "backbone_weights": self.weights_hash[:16]}


def make_backbone(name: str, dataset: Callable[[str], Any] | None = None,
                  device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None,
                  domain_recipe: domain.DomainRecipe = domain.DomainRecipe(),
                  progress: bool = False) -> Backbone:
    """The backbone called ``name``. ``dataset(split)`` gives the ``ArrayDataset`` of a split (the
    domain classifier trains on "train" and reports its accuracy on "test")."""
    if name == "raw":
        return RawBackbone()
    if name == "domain":
        if dataset is None:
            raise ValueError("the domain backbone needs dataset(split) to train on")
        return DomainBackbone(dataset("train"), dataset("test"), domain_recipe, device, cache_dir, progress)
    if name == "inception":
        return InceptionBackbone(device)
    raise ConfigError(f"unknown backbone {name!r}; choose 'domain' or 'inception' (vector data: 'raw')")
