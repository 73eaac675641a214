"""Evaluation: pure metric functions and the ``METRICS`` registry.

Pure functions ("features -> statistics -> number"; arrays or tensors, rows = samples):
``frechet_distance``, ``feature_statistics``, ``kid``, ``inception_score``, ``precision_recall``
(frechet.py); ``nearest_subspace_accuracy``, ``class_singular_values``, ``principal_angles``,
``feature_rank``, ``effective_rank``, ``coding_rate``, ``rate_reduction`` (subspace.py);
``clustering_accuracy``, ``nmi``, ``kmeans``, ``knn_accuracy``, ``linear_probe_accuracy``
(clustering.py); ``mig``, ``normalized_absolute_covariance``, ``transform_score``,
``kl_active_dims`` (disentangle.py); ``sharpness``, ``sharpness_per_image`` (image.py).

Backbones: ``inception.FIDInceptionV3`` (standard FID network; weights from a local file or one
checked download) and ``domain.DomainClassifier`` (trained on the dataset, cached).

Registry: ``METRICS[name].fn(method, ctx) -> dict``; ``evaluate(method, ctx, names)`` runs several
and shares samples/encodings between them. Unknown names raise ``ConfigError`` listing valid ones.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..errors import ConfigError
from ..methods.base import Method
from . import evaluate as _ev
from .clustering import clustering_accuracy, kmeans, knn_accuracy, linear_probe_accuracy, nmi
from .disentangle import kl_active_dims, mig, normalized_absolute_covariance, transform_score
from .evaluate import EvalContext, MetricSpec, Skip
from .frechet import feature_statistics, frechet_distance, inception_score, kid, precision_recall
from .image import sharpness, sharpness_per_image
from .subspace import (class_singular_values, coding_rate, effective_rank, feature_rank,
                       nearest_subspace_accuracy, principal_angles, rate_reduction)

METRICS: dict[str, MetricSpec] = {
    "fid": MetricSpec(_ev.fid, "Fréchet distance of backbone features, samples vs reference split"),
    "kid": MetricSpec(_ev.kid, "kernel inception distance (unbiased MMD², cubic kernel), mean ± std"),
    "is": MetricSpec(_ev.inception_score, "inception score from the backbone's class probabilities"),
    "precision-recall": MetricSpec(_ev.precision_recall, "k-NN manifold precision and recall (k=3)"),
    "recon-mse": MetricSpec(_ev.recon_mse, "reconstruction MSE per element ([0,1] pixels)"),
    "sharpness": MetricSpec(_ev.sharpness_metric, "variance of the Laplacian of samples/reconstructions"),
    "recon-class-acc": MetricSpec(_ev.recon_class_acc, "domain-classifier accuracy of reconstructions"),
    "decode-variance": MetricSpec(_ev.decode_variance, "pixel variance of decodings of z ~ q(z|x)"),
    "ns-acc": MetricSpec(_ev.ns_acc, "nearest-subspace accuracy of encoder features (centred, uncentred)"),
    "knn-acc": MetricSpec(_ev.knn_acc, "k-NN (k=5) accuracy of encoder features"),
    "linear-probe": MetricSpec(_ev.linear_probe, "logistic-regression probe accuracy on encoder features"),
    "cluster-acc": MetricSpec(_ev.cluster_acc, "unsupervised accuracy (best one-to-one matching)"),
    "nmi": MetricSpec(_ev.nmi_metric, "normalised mutual information of clusters and labels"),
    "feature-rank": MetricSpec(_ev.feature_rank_metric, "numerical and effective rank of features"),
    "rate-reduction": MetricSpec(_ev.rate_reduction_metric, "R, Rc, ΔR of normalised features (ε²=0.5)"),
    "mig": MetricSpec(_ev.mig_metric, "mutual information gap against ground-truth factors"),
    "qmm-score": MetricSpec(_ev.qmm_score, "QMM λ1/λ2 score under slant (shear) and width transforms"),
    "nac": MetricSpec(_ev.nac, "normalised absolute covariance of active latent dimensions"),
    "active-dims": MetricSpec(_ev.active_dims, "active latent units (mask, KL > 0.01, or feature rank)"),
}


def check_names(names: Iterable[str]) -> list[str]:
    """Validate metric names (e.g. from ``--metrics``) before any work; ConfigError lists valid ones."""
    names = list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                          f"valid: {', '.join(METRICS)}")
    return names


def evaluate(method: Method, ctx: EvalContext, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Run the named metrics on ``method`` -> ``{name: result dict}`` (in the order given).

    The method is put in eval mode for the duration (and restored), inference runs under
    ``torch.no_grad``; samples and encodings are shared between the metrics of this call only.
    """
    import torch

    names = check_names(names)
    was_training = method.training
    method.eval()
    ctx.clear_method_cache()
    results: dict[str, dict[str, Any]] = {}
    try:
        with torch.no_grad():
            for name in names:
                results[name] = _ev.run_metric(METRICS[name], method, ctx)
                if ctx.progress:
                    _ev._log(f"{name}: done in {results[name]['seconds']} s")
    finally:
        ctx.clear_method_cache()
        method.train(was_training)
    return results


__all__ = [
    "METRICS", "EvalContext", "MetricSpec", "Skip", "check_names", "evaluate",
    "frechet_distance", "feature_statistics", "kid", "inception_score", "precision_recall",
    "nearest_subspace_accuracy", "class_singular_values", "principal_angles", "feature_rank",
    "effective_rank", "coding_rate", "rate_reduction", "clustering_accuracy", "nmi", "kmeans",
    "knn_accuracy", "linear_probe_accuracy", "mig", "normalized_absolute_covariance",
    "transform_score", "kl_active_dims", "sharpness", "sharpness_per_image",
]
