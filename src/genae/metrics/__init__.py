"""Evaluation: pure metric functions and the ``METRICS`` registry.

Pure functions ("features -> statistics -> number"; arrays or tensors, rows = samples):
``frechet_distance``, ``feature_statistics``, ``kid``, ``inception_score``, ``precision_recall``
(frechet.py); ``nearest_subspace_accuracy``, ``class_singular_values``, ``principal_angles``,
``feature_rank``, ``effective_rank``, ``coding_rate``, ``rate_reduction`` (subspace.py);
``clustering_accuracy``, ``nmi``, ``kmeans``, ``knn_accuracy``, ``linear_probe_accuracy``
(clustering.py); ``mig``, ``normalized_absolute_covariance``, ``transform_score``,
``kl_active_dims`` (disentangle.py); ``dci``, ``sap``, ``factorvae_score``, ``modularity``,
``explicitness`` (disentangle_scores.py); ``sharpness``, ``sharpness_per_image`` (image.py).

Layering (each layer imports only the ones above it):

- ``base.py``: ``Skip``, ``MetricSpec``, applicability checks, pixel conversions.
- ``backbones.py``: feature backbones ``raw`` / ``domain`` / ``inception``, each with
  ``features(x) -> (B, F)``, ``weights_hash`` and ``protocol()``; ``make_backbone(name, ...)``.
  The networks: ``inception.FIDInceptionV3`` (standard FID network; weights from a local file or
  one checked download) and ``domain.DomainClassifier`` (trained on the dataset, cached).
- ``context.py``: ``EvalContext`` — data splits, the lazily built backbone, cached real-data
  statistics, and the samples/encodings shared by the metrics of one ``evaluate`` call.
- metric groups, ``fn(method, ctx) -> dict``: ``generative.py`` (fid, kid, is, precision-recall),
  ``reconstruction.py`` (recon-mse, sharpness, recon-class-acc, decode-variance),
  ``imagination.py`` (fid-seeded, imagine-mse, imagine-class-acc, sharpness-sp: renderings of z ~ q(z|x)),
  ``representation.py`` (ns-acc, knn-acc, linear-probe, cluster-acc, nmi, feature-rank,
  rate-reduction), ``latent.py`` (mig, mig-sampled, informativeness, tc, dci, sap, factorvae-score,
  modularity, qmm-score, nac, active-dims).

Registry: ``METRICS[name].fn(method, ctx) -> dict``; ``evaluate(method, ctx, names)`` runs several
and shares samples/encodings between them. Unknown names raise ``ConfigError`` listing valid ones.
Every result dict holds its number(s) (``"value"`` for the headline number) and the protocol
(``backbone`` where features are compared, ``n_real``/``n_fake`` or ``n``, ``split``); a metric that
does not apply returns ``{"skipped": "<reason>"}``.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from ..errors import ConfigError, did_you_mean
from ..methods.base import Method, Unsupported
from . import generative, imagination, latent, reconstruction, representation
from .backbones import Backbone, DomainBackbone, InceptionBackbone, RawBackbone, make_backbone
from .base import MetricSpec, Skip, log
from .clustering import clustering_accuracy, kmeans, knn_accuracy, linear_probe_accuracy, nmi
from .context import EvalContext
from .disentangle import kl_active_dims, mig, normalized_absolute_covariance, transform_score
from .disentangle_scores import dci, explicitness, factorvae_score, modularity, sap
from .frechet import feature_statistics, frechet_distance, inception_score, kid, precision_recall
from .image import sharpness, sharpness_per_image
from .subspace import (class_singular_values, coding_rate, effective_rank, feature_rank,
                       nearest_subspace_accuracy, principal_angles, rate_reduction)

_BACKBONE = ("backbone", "backbone_weights", "backbone_test_acc", "n_real", "n_fake", "split")
# the domain classifier a class accuracy used: its weights' digest says which one it was
_CLASSIFIER = ("classifier", "backbone_weights", "backbone_test_acc", "n", "split")
_CODES = ("n_train", "n_test", "split")
_WEIGHTS = ("backbone", "backbone_weights")  # which features: a different network, another quantity
HIGHER, LOWER = "higher", "lower"

METRICS: dict[str, MetricSpec] = {
    "fid": MetricSpec(generative.fid, "Fréchet distance of backbone features, samples vs reference split",
                      ("sample",), _BACKBONE, better=LOWER, measure=_WEIGHTS),
    "kid": MetricSpec(generative.kid, "kernel inception distance (unbiased MMD², cubic kernel), mean ± std",
                      ("sample",), _BACKBONE, better=LOWER, measure=_WEIGHTS),
    "is": MetricSpec(generative.inception_score, "inception score from the backbone's class probabilities",
                     ("sample", "images"), ("backbone", "backbone_weights", "n_fake"),
                     better=HIGHER, measure=_WEIGHTS),
    "precision-recall": MetricSpec(generative.precision_recall, "k-NN manifold precision and recall (k=3)",
                                   ("sample",), _BACKBONE,
                                   better={"precision": HIGHER, "recall": HIGHER}, measure=_WEIGHTS),
    "recon-mse": MetricSpec(reconstruction.recon_mse, "reconstruction MSE per element ([0,1] pixels)",
                            ("reconstruct",), ("n", "split"), better={"value": LOWER, "sse_per_example": LOWER}),
    "sharpness": MetricSpec(reconstruction.sharpness_metric, "variance of the Laplacian of samples/reconstructions",
                            ("sample|reconstruct", "images"), ("n_fake", "n_real", "split"),
                            better={"value": HIGHER, "reconstructions": HIGHER}),
    "recon-class-acc": MetricSpec(reconstruction.recon_class_acc, "domain-classifier accuracy of reconstructions",
                                  ("reconstruct", "labels", "images"), _CLASSIFIER,
                                  better={"absolute": HIGHER, "relative": HIGHER}, measure=_CLASSIFIER[:2]),
    "decode-variance": MetricSpec(reconstruction.decode_variance, "pixel variance of decodings of z ~ q(z|x)",
                                  ("posterior_sample", "decode", "images"), ("n_images", "n_draws", "split")),
    "fid-seeded": MetricSpec(imagination.fid_seeded, "FID of test-seeded images: renderings of z ~ q(z|x) of the "
                             "reference split", ("posterior_sample", "decode"), _BACKBONE,
                             better=LOWER, measure=_WEIGHTS),
    "imagine-mse": MetricSpec(imagination.imagine_mse, "MSE between inputs and their imaginations (z ~ q(z|x))",
                              ("posterior_sample", "decode"), ("n", "split"),
                              better={"value": LOWER, "sse_per_example": LOWER}),
    "imagine-class-acc": MetricSpec(imagination.imagine_class_acc, "domain-classifier accuracy of imaginations "
                                    "(absolute, relative)", ("posterior_sample", "decode", "labels", "images"),
                                    _CLASSIFIER, better={"value": HIGHER, "absolute": HIGHER, "relative": HIGHER},
                                    measure=_CLASSIFIER[:2]),
    "sharpness-sp": MetricSpec(imagination.sharpness_sp, "San Pedro & Siersdorfer luminance-normalised sharpness "
                               "of imaginations, reconstructions, real images", ("posterior_sample", "decode", "images"),
                               ("n", "split"), better={"value": HIGHER, "reconstructions": HIGHER}),
    "ns-acc": MetricSpec(representation.ns_acc, "nearest-subspace accuracy of encoder features (centred, uncentred)",
                         ("encode", "labels"), _CODES,
                         better={"value": HIGHER, "centered": HIGHER, "uncentered": HIGHER}),
    "knn-acc": MetricSpec(representation.knn_acc, "k-NN (k=5) accuracy of encoder features",
                          ("encode", "labels"), _CODES, better=HIGHER),
    "linear-probe": MetricSpec(representation.linear_probe, "logistic-regression probe accuracy on encoder features",
                               ("encode", "labels"), _CODES, better=HIGHER),
    "cluster-acc": MetricSpec(representation.cluster_acc, "unsupervised accuracy (best one-to-one matching)",
                              ("cluster|encode", "labels"), ("assignments", "n", "split"),
                              better=HIGHER, measure=("assignments",)),
    "nmi": MetricSpec(representation.nmi_metric, "normalised mutual information of clusters and labels",
                      ("cluster|encode", "labels"), ("assignments", "n", "split"),
                      better=HIGHER, measure=("assignments",)),
    "feature-rank": MetricSpec(representation.feature_rank_metric, "numerical and effective rank of features",
                               ("encode",), ("n", "split")),
    "rate-reduction": MetricSpec(representation.rate_reduction_metric, "R, Rc, ΔR of normalised features (ε²=0.5)",
                                 ("encode",), ("n", "split"), better={"value": HIGHER, "delta_R": HIGHER}),
    "mig": MetricSpec(latent.mig_metric, "mutual information gap against ground-truth factors",
                      ("posterior|encode", "factors"), ("codes", "n_bins", "n", "split"),
                      better={"value": HIGHER, "with_y": HIGHER}, measure=("codes",)),
    "mig-sampled": MetricSpec(latent.mig_sampled_metric, "MIG with β-TCVAE's estimator (aggregate-posterior "
                              "entropies)", ("posterior", "factors"), ("estimator", "n", "split"),
                              better={"value": HIGHER, "with_y": HIGHER}, measure=("estimator",)),
    "dci": MetricSpec(latent.dci_metric, "DCI disentanglement (value), completeness, informativeness (Eastwood & "
                      "Williams 2018; lasso importance)", ("posterior|encode", "factors"),
                      ("codes", "regressor", "n_train", "n_test", "split"),
                      better={"value": HIGHER, "disentanglement": HIGHER, "completeness": HIGHER,
                              "informativeness": HIGHER}, measure=("codes", "regressor")),
    "sap": MetricSpec(latent.sap_metric, "SAP: mean gap between the two best single-dimension predictors of "
                      "each factor (Kumar et al. 2018)", ("posterior|encode", "factors"),
                      ("codes", "classifier", "n_train", "n_test", "split"),
                      better=HIGHER, measure=("codes", "classifier")),
    "factorvae-score": MetricSpec(latent.factorvae_metric, "FactorVAE score: majority-vote accuracy from "
                                  "fixed-factor batches of rendered dSprites (Kim & Mnih 2018)",
                                  ("posterior|encode", "factors", "images"),
                                  ("codes", "batch_size", "num_train", "num_eval", "num_variance_estimate"),
                                  better={"value": HIGHER, "train_accuracy": HIGHER}, measure=("codes",)),
    "modularity": MetricSpec(latent.modularity_metric, "modularity (value) and explicitness (Ridgeway & Mozer 2018)",
                             ("posterior|encode", "factors"), ("codes", "n_bins", "n", "n_train", "n_test", "split"),
                             better={"value": HIGHER, "modularity": HIGHER, "explicitness": HIGHER},
                             measure=("codes",)),
    "informativeness": MetricSpec(latent.informativeness, "per-dimension ½·log(1 + Var[μ_k]/E[σ_k²]) (IMAE Prop. 1)",
                                  ("posterior",), ("n", "split"), better=HIGHER),
    "tc": MetricSpec(latent.total_correlation_metric, "total correlation of the aggregate posterior (nats)",
                     ("posterior",), ("n", "estimator", "split"),
                     better=LOWER, measure=("estimator",)),
    "qmm-score": MetricSpec(latent.qmm_score, "QMM λ1/λ2 score under slant (shear) and width transforms",
                            ("encode|manifolds", "images"), ("codes", "n_images", "strengths", "split"),
                            better={"value": HIGHER, "slant": HIGHER, "width": HIGHER}, measure=("codes",)),
    "nac": MetricSpec(latent.nac, "normalised absolute covariance of active latent dimensions",
                      ("encode",), ("dims", "n", "split"), better=LOWER, measure=("dims",)),
    "active-dims": MetricSpec(latent.active_dims, "active latent units (mask, KL > 0.01, or feature rank)",
                              ("active_dims|posterior|encode",), ("method", "split"), measure=("method",)),
}


#: ``NAME@gmm``: a sampling metric with samples decoded from the ex-post prior (``genae.ex_post``)
EX_POST = "gmm"
SAMPLING = ("fid", "kid", "is", "precision-recall", "sharpness")


def split_renderer(name: str) -> tuple[str, str | None]:
    """``"fid@vae"`` -> ``("fid", "vae")``, ``"fid"`` -> ``("fid", None)``: a metric name may name
    the renderer of a method with several decoders (lsr-gan's ``vae`` and ``lsr``)."""
    base, _, renderer = name.partition("@")
    return base, renderer or None


def check_names(names: Iterable[str]) -> list[str]:
    """Validate metric names (e.g. from ``--metrics``; ``NAME@RENDERER`` allowed, see ``evaluate``)
    before any work; ConfigError lists valid ones."""
    names = list(names)
    unknown = [n for n in names if split_renderer(n)[0] not in METRICS]
    if unknown:
        # a typo's hint keeps the renderer it named: fdi@vae -> fid@vae
        hints = [n + did_you_mean(n, [m + n[len(split_renderer(n)[0]):] for m in METRICS]) for n in unknown]
        raise ConfigError(f"unknown metric{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                          f"valid: {', '.join(METRICS)}")
    empty = [n for n in names if n.endswith("@")]
    if empty:
        raise ConfigError(f"metric {empty[0]!r}: name the renderer after @ (e.g. fid@vae)")
    return names


def evaluate(method: Method, ctx: EvalContext, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Run the named metrics on ``method`` -> ``{name: result dict}`` (in the order given).

    ``NAME@gmm`` (a sampling metric: fid, kid, is, precision-recall, sharpness) evaluates NAME on
    samples decoded from the ex-post prior, a Gaussian mixture fitted on training codes
    (``ctx.ex_post_prior``; ``genae.ex_post``), for any method that encodes and decodes; the result
    names the prior (``"prior"``). ``NAME@RENDERER`` (e.g. ``fid@vae``, ``fid@lsr``) evaluates NAME with the method's ``renderer``
    set to RENDERER (one of its ``renderers``; lsr-gan's stage-1 decoder or its generator) and adds
    ``"renderer"`` to the result; one run then answers "VAE vs LSR-GAN" for every metric, also
    through ``genae sweep --metrics``. The method is put in eval mode for the duration (and
    restored), inference runs under ``torch.no_grad``; samples and encodings are shared between the
    metrics of one renderer only.
    """
    names = check_names(names)
    groups: dict[str | None, list[str]] = {}
    for name in names:
        base, renderer = split_renderer(name)
        groups.setdefault(renderer, []).append(base)
    choices = method.renderers
    for renderer in groups:
        if renderer == EX_POST:
            other = [b for b in groups[renderer] if b not in SAMPLING]
            if other:
                raise ConfigError(f"metric {other[0]}@{EX_POST}: @{EX_POST} samples from the ex-post prior, "
                                  f"which changes only the sampling metrics: {', '.join(SAMPLING)}")
        elif renderer is not None and renderer not in choices:
            raise ConfigError(f"metric renderer @{renderer}: {type(method).__name__} "
                              + (f"renders with {', '.join(choices)}" if choices else "has one decoder; "
                                 "only lsr-gan has several renderers (@vae, @lsr)"))
    results: dict[str, dict[str, Any]] = {}
    for renderer, bases in groups.items():
        if renderer is None:
            results.update(_evaluate(method, ctx, bases))
            continue
        if renderer == EX_POST:
            results.update(_evaluate_ex_post(method, ctx, bases))
            continue
        with method.render_with(renderer):
            for base, res in _evaluate(method, ctx, bases).items():
                results[f"{base}@{renderer}"] = {**res, "renderer": renderer}
    return {name: results[name] for name in names}


def _evaluate_ex_post(method: Method, ctx: EvalContext, bases: list[str]) -> dict[str, dict[str, Any]]:
    """The sampling metrics ``bases`` with samples ``decode(z)``, z ~ the ex-post prior
    (``ctx.ex_post_prior``), keyed ``NAME@gmm``; each result names the prior and its fit. A method
    that cannot encode and decode gets ``skipped`` with the reason."""
    from ..ex_post import why_not

    reason = why_not(method)
    if reason:
        return {f"{b}@{EX_POST}": {"skipped": reason, "seconds": 0.0} for b in bases}
    prior = ctx.ex_post_prior(method)
    info = prior.info
    what = (f"gmm: {prior.components} full-covariance Gaussians, EM on {info.get('n_codes')} training codes, "
            f"seed {info.get('seed')}")
    ctx.sampling_prior = prior
    try:
        return {f"{b}@{EX_POST}": {**r, "prior": what} for b, r in _evaluate(method, ctx, bases).items()}
    finally:
        ctx.sampling_prior = None


def _evaluate(method: Method, ctx: EvalContext, names: list[str]) -> dict[str, dict[str, Any]]:
    import torch

    was_training = method.training
    method.eval()
    ctx.clear_method_cache()
    results: dict[str, dict[str, Any]] = {}
    try:
        with torch.no_grad():
            for name in names:
                results[name] = _run(METRICS[name], method, ctx)
                if ctx.progress:
                    log(f"{name}: done in {results[name]['seconds']} s")
    finally:
        ctx.clear_method_cache()
        method.train(was_training)
    return results


def unmet_need(spec: MetricSpec, method: Method, ctx: EvalContext) -> str | None:
    """The first of ``spec.needs`` that neither ``method`` nor the reference data meet, as a
    sentence, or None. Each need is alternatives joined by "|", each a capability of the method
    (``Method.supports``; "sample" is also met while an ex-post prior samples, ``NAME@gmm``) or a
    property of the data: "labels", "images", "factors". The one place declared needs are checked."""
    from ..methods.base import CAPABILITIES

    data = {"labels": (lambda: ctx.dataset(ctx.split).y is not None, "needs class labels; {} is unlabelled"),
            "images": (lambda: ctx.kind == "image", "applies to images; {} is vector data"),
            "factors": (lambda: getattr(ctx.dataset(ctx.split), "factors", None) is not None,
                        "needs ground-truth factors; {} has none")}

    def met(need: str) -> bool:
        if need == "sample" and ctx.sampling_prior is not None:
            return True
        return method.supports(need) if need in CAPABILITIES else data[need][0]()

    for need in spec.needs:
        options = need.split("|")
        if any(met(o) for o in options):
            continue
        if all(o in CAPABILITIES for o in options):
            return (f"{type(method).__name__} cannot {' or '.join(options)} "
                    f"({'; '.join(CAPABILITIES[o] for o in options)})")
        return data[next(o for o in options if o in data)][1].format(ctx.dataset(ctx.split).name)
    return None


def _run(spec: MetricSpec, method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Call one metric once its declared needs are met (``unmet_need``); an unmet need, ``Skip``
    and ``Unsupported`` become ``{"skipped": reason}``."""
    t0 = time.perf_counter()
    try:
        reason = unmet_need(spec, method, ctx)
        if reason is not None:
            raise Skip(reason)
        out = spec.fn(method, ctx)
    except (Skip, Unsupported) as e:
        out = {"skipped": str(e)}
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


__all__ = [
    "METRICS", "EvalContext", "MetricSpec", "Skip", "check_names", "evaluate", "split_renderer",
    "Backbone", "RawBackbone", "DomainBackbone", "InceptionBackbone", "make_backbone",
    "frechet_distance", "feature_statistics", "kid", "inception_score", "precision_recall",
    "nearest_subspace_accuracy", "class_singular_values", "principal_angles", "feature_rank",
    "effective_rank", "coding_rate", "rate_reduction", "clustering_accuracy", "nmi", "kmeans",
    "knn_accuracy", "linear_probe_accuracy", "mig", "dci", "sap", "factorvae_score", "modularity",
    "explicitness", "normalized_absolute_covariance",
    "transform_score", "kl_active_dims", "sharpness", "sharpness_per_image",
]
