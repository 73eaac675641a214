"""Representations: what the encoder's features (``method.encode`` of whole splits) hold.

``ns-acc``, ``knn-acc`` and ``linear-probe`` fit on the train split's features and score the
reference split; ``cluster-acc`` and ``nmi`` use the method's own discrete code where it has one
(``cluster``), else k-means; ``feature-rank`` and ``rate-reduction`` describe the reference
features' geometry.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import clustering, subspace
from .base import need_labels
from .context import EvalContext

__all__ = ["cluster_acc", "feature_rank_metric", "knn_acc", "linear_probe", "nmi_metric", "ns_acc",
           "rate_reduction_metric"]


def ns_acc(method, ctx: EvalContext, n_components: int = 10) -> dict[str, Any]:
    """Nearest-subspace accuracy, centred (PCA) and uncentred (SVD), fitted on train features."""
    ytr, yte = need_labels(ctx, "ns-acc")
    ztr, zte = ctx.encodings(method, "train"), ctx.encodings(method)
    # A subspace as large as the feature space leaves every residual 0 (all classes tie), so
    # with latent dim d ≤ n_components we use d − 1 components and say so.
    k = max(1, min(n_components, ztr.shape[1] - 1))
    c = subspace.nearest_subspace_accuracy(ztr, ytr, zte, yte, k, centered=True)
    u = subspace.nearest_subspace_accuracy(ztr, ytr, zte, yte, k, centered=False)
    out = {"value": c, "centered": c, "uncentered": u, "n_components": k,
           "n_train": len(ztr), "n_test": len(zte), "split": ctx.split}
    if k < n_components:
        out["note"] = f"feature dim {ztr.shape[1]} <= {n_components}: used {k} components"
    return out


def knn_acc(method, ctx: EvalContext, k: int = 5) -> dict[str, Any]:
    """k-NN (k = 5, Euclidean, majority vote) accuracy of encoder features, train -> reference."""
    ytr, yte = need_labels(ctx, "knn-acc")
    ztr, zte = ctx.encodings(method, "train"), ctx.encodings(method)
    return {"value": clustering.knn_accuracy(ztr, ytr, zte, yte, k=k), "k": k,
            "n_train": len(ztr), "n_test": len(zte), "split": ctx.split}


def linear_probe(method, ctx: EvalContext) -> dict[str, Any]:
    """Multinomial logistic regression (standardised features, L-BFGS, L2 1e-4) train -> reference."""
    ytr, yte = need_labels(ctx, "linear-probe")
    ztr, zte = ctx.encodings(method, "train"), ctx.encodings(method)
    return {"value": clustering.linear_probe_accuracy(ztr, ytr, zte, yte), "weight_decay": 1e-4,
            "n_train": len(ztr), "n_test": len(zte), "split": ctx.split}


def _clusters(method, ctx: EvalContext) -> tuple[np.ndarray, str]:
    """Cluster assignments of the reference split: the method's own discrete code where it has
    one (``method.cluster(x)`` -> labels ``(B,)`` or probabilities ``(B, K)``), else k-means with
    K = number of classes on the encoder features."""
    def make():
        ds = ctx.dataset(ctx.split)
        if method.supports("cluster"):
            out = ctx.batched(method.cluster, ds.x, method)
            return (out.argmax(1) if out.ndim == 2 else out).long().numpy(), "method.cluster"
        k = ds.num_classes or 10
        return clustering.kmeans(ctx.encodings(method), k, seed=ctx.seed), f"kmeans(k={k}) on encode"
    return ctx.memo(method, "clusters", make)


def cluster_acc(method, ctx: EvalContext) -> dict[str, Any]:
    """Unsupervised accuracy (best one-to-one cluster-to-label matching)."""
    _, y = need_labels(ctx, "cluster-acc")
    pred, how = _clusters(method, ctx)
    return {"value": clustering.clustering_accuracy(y, pred), "assignments": how, "n": len(y),
            "split": ctx.split}


def nmi_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Normalised mutual information between clusters and labels (arithmetic normalisation)."""
    _, y = need_labels(ctx, "nmi")
    pred, how = _clusters(method, ctx)
    return {"value": clustering.nmi(y, pred), "assignments": how, "n": len(y), "split": ctx.split}


def feature_rank_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Numerical rank (σ > 1e-3 σ_max, centred) and effective rank of the reference features;
    per-class ranks and the mean cosine of principal angles between class subspaces if labelled."""
    z = ctx.encodings(method)
    out: dict[str, Any] = {"value": subspace.feature_rank(z), "effective_rank": subspace.effective_rank(z),
                           "dim": int(z.shape[1]), "n": len(z), "split": ctx.split}
    y = ctx.dataset(ctx.split).y
    if y is not None:
        y = y.numpy()
        out["per_class_rank"] = {int(c): subspace.feature_rank(z[y == c]) for c in np.unique(y)}
        _, cos = subspace.principal_angles(z, y, n_components=min(10, z.shape[1]))
        off = ~np.eye(cos.shape[0], dtype=bool)
        out["mean_cos_principal_angle"] = float(np.nanmean(cos[off])) if off.any() else float("nan")
    return out


def rate_reduction_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """R, Rc and ΔR (ε² = 0.5) of the L2-normalised reference features."""
    z = ctx.encodings(method)
    y = ctx.dataset(ctx.split).y
    if y is None:
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return {"R": subspace.coding_rate(zn, 0.5), "eps2": 0.5, "normalized": True, "n": len(z),
                "split": ctx.split, "note": "unlabelled data: Rc and delta_R need classes"}
    out = subspace.rate_reduction(z, y.numpy(), eps2=0.5, normalize=True)
    return {"value": out["delta_R"], **out, "eps2": 0.5, "normalized": True, "n": len(z),
            "split": ctx.split}
