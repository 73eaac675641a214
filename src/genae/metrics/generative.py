"""Generative quality: samples against the reference split in a feature backbone's space.

``fid``, ``kid``, ``is`` and ``precision-recall`` compare ``ctx.n_samples`` generated samples
(quantised to uint8 like the stored images) with the reference split, both through
``ctx.feature_backbone`` (``domain``, ``inception`` or ``raw``). Every result carries the protocol:
``backbone`` (with its weights hash and, for ``domain``, its test accuracy), ``n_real``,
``n_fake`` and ``split``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import frechet
from .base import Skip
from .context import EvalContext

__all__ = ["fid", "inception_score", "kid", "precision_recall"]


def fid(method, ctx: EvalContext) -> dict[str, Any]:
    """Fréchet distance between backbone features of ``n_samples`` samples and the reference split."""
    real = ctx.real_features()
    fake = ctx.fake_features(method)[0]
    mu, sigma = frechet.feature_statistics(fake)
    value = frechet.frechet_distance(real["mu"], real["sigma"], mu, sigma)
    return {"value": value, **ctx.protocol(len(real["features"]), len(fake))}


def kid(method, ctx: EvalContext) -> dict[str, Any]:
    """KID (×1, not ×1000): mean ± std of unbiased MMD² over 100 subsets of ≤ 1000."""
    real = ctx.real_features()["features"]
    fake = ctx.fake_features(method)[0]
    mean, std = frechet.kid(real, fake, n_subsets=100, subset_size=1000, seed=ctx.seed)
    return {"value": mean, "std": std, "subset_size": min(1000, len(real), len(fake)),
            "n_subsets": 100, **ctx.protocol(len(real), len(fake))}


def inception_score(method, ctx: EvalContext) -> dict[str, Any]:
    """IS from the backbone's class probabilities (domain: its K classes; inception: 1008)."""
    if ctx.backbone_name == "raw":
        raise Skip("the inception score needs a classifier; vector data has none")
    probs = ctx.fake_features(method)[1]
    mean, std = frechet.inception_score(probs, splits=10)
    return {"value": mean, "std": std, "splits": 10, "num_classes": int(probs.shape[1]),
            **ctx.protocol(None, len(probs))}


def precision_recall(method, ctx: EvalContext) -> dict[str, Any]:
    """Improved precision/recall (k = 3) with equal numbers of real and fake features."""
    real = ctx.real_features()["features"]
    fake = ctx.fake_features(method)[0]
    n = min(len(real), len(fake))
    rng = np.random.default_rng(ctx.seed)
    r = real[np.sort(rng.choice(len(real), n, replace=False))]
    f = fake[np.sort(rng.choice(len(fake), n, replace=False))]
    p, rc = frechet.precision_recall(r, f, k=3)
    return {"precision": p, "recall": rc, "k": 3, **ctx.protocol(n, n)}
