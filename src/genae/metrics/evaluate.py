"""Metric functions ``(method, ctx) -> dict`` and the ``EvalContext`` they share.

``EvalContext`` lazily loads the data splits, the feature backbone and the cached real-data
statistics; within one ``evaluate`` call it also shares a method's generated samples and
encodings between metrics (cleared afterwards, so a later call on a further-trained method never
sees stale samples).

Every result dict holds its number(s) (``"value"`` for the headline number) and the protocol:
``backbone`` (and its test accuracy for ``domain``), ``n_real``, ``n_fake`` and ``split`` (the
reference split). A metric that does not apply returns ``{"skipped": "<reason>"}``.

Conventions: images are compared in [0, 1] (``method.to_unit``; real uint8 / 255); vectors raw.
Evaluation never touches the global RNG (the trainer checkpoints it): every draw uses a
``torch.Generator`` / NumPy generator seeded from ``ctx.seed``.
"""
from __future__ import annotations

import io
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..fileio import atomic_write
from ..methods.base import Unsupported
from . import clustering, disentangle, frechet, image, subspace
from .domain import DomainRecipe, cache_root, dataset_key, load_or_train_domain

__all__ = ["EvalContext", "MetricSpec", "Skip"]


class Skip(Exception):
    """Raised inside a metric that does not apply; ``evaluate`` turns it into ``{"skipped": ...}``."""


@dataclass(frozen=True)
class MetricSpec:
    """A registry entry: ``fn(method, ctx) -> dict`` and a one-line description."""

    fn: Callable[[Any, "EvalContext"], dict[str, Any]]
    description: str


_STATS_KEYS = ("features", "mu", "sigma")


def _read_stats(path: Path) -> dict[str, np.ndarray] | None:
    """The cached real-data statistics at ``path``, or None (with a ``RuntimeWarning`` naming
    it) when the file is damaged. ``allow_pickle=False``: an object array in a crafted file is
    refused rather than unpickled."""
    try:
        with np.load(path, allow_pickle=False) as z:
            stats = {k: np.asarray(z[k]) for k in _STATS_KEYS}
        if any(v.dtype.kind not in "fiu" for v in stats.values()):
            raise ValueError("non-numeric arrays")
        return stats
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        warnings.warn(f"real-data statistics cache {path} is unusable ({type(e).__name__}: {e}); "
                      f"recomputing it", RuntimeWarning, stacklevel=3)
        return None


def _write_stats(path: Path, stats: dict[str, np.ndarray]) -> None:
    """Write ``stats`` to ``path`` atomically (``genae.fileio.atomic_write``)."""
    buf = io.BytesIO()
    np.savez(buf, **stats)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())


@dataclass
class EvalContext:
    """What the metrics evaluate against.

    data_cfg: the run's ``DataConfig``. split: the reference split ("test" or "train").
    n_samples: generated samples for fid/kid/is/precision-recall (and the cap on reconstructed
        examples). backbone: "domain" (genae's classifier, offline) or "inception"; vector data
        always uses the raw vectors ("raw"). device: where the method and backbone run.
    seed: all sampling in evaluation. batch_size: inference batch size.
    cache_dir: root of genae's cache (default ``$GENAE_CACHE`` or ``~/.cache/genae``).
    domain_recipe: how the domain classifier is trained (part of its cache key).
    mig_factors: factor names used by ``mig``; None = all but "shape" (Chen et al. 2018 leave
        dSprites' shape out).
    progress: print one line per metric with its duration to stderr.
    """

    data_cfg: Any
    split: str = "test"
    n_samples: int = 10000
    backbone: str = "domain"
    device: str = "cpu"
    seed: int = 0
    batch_size: int = 500
    cache_dir: str | None = None
    domain_recipe: DomainRecipe = field(default_factory=DomainRecipe)
    mig_factors: tuple[str, ...] | None = None
    progress: bool = False
    _data: dict = field(default_factory=dict, init=False, repr=False)
    _net: Any = field(default=None, init=False, repr=False)
    _real: dict = field(default_factory=dict, init=False, repr=False)
    _per_method: dict = field(default_factory=dict, init=False, repr=False)

    # --- data -----------------------------------------------------------------------------------
    def dataset(self, split: str | None = None):
        """The ``ArrayDataset`` of ``split`` (default: the reference split), loaded once."""
        split = split or self.split
        if split not in self._data:
            from ..data import load_dataset  # lazy: metrics must import without the data package
            self._data[split] = load_dataset(self.data_cfg, split=split)
        return self._data[split]

    @property
    def kind(self) -> str:
        return self.dataset("train").kind

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else cache_root()

    def to_method(self, x: torch.Tensor, method) -> torch.Tensor:
        """Stored examples (uint8 images / float vectors) -> the method's input range, on its device."""
        from ..data import to_range
        return to_range(x.to(self.device), method.input_range)

    # --- backbone -------------------------------------------------------------------------------
    @property
    def backbone_name(self) -> str:
        if self.kind == "vector":
            return "raw"
        if self.backbone not in ("domain", "inception"):
            from ..errors import ConfigError
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose 'domain' or 'inception'")
        return self.backbone

    def classifier(self):
        """The domain classifier (trained and cached on first use); needs labelled images."""
        if "domain" not in (self._net or {}):
            # Accuracy is always measured on the test split, whatever the reference split.
            tr, ref = self.dataset("train"), self.dataset("test")
            if self.kind != "image" or tr.y is None:
                raise Skip(f"the domain classifier needs labelled images; {tr.name} "
                           f"{'has no labels' if tr.y is None else 'is vector data'}")
            if self.progress:
                _log(f"domain classifier for {tr.name}: loading or training (cached)")
            net, h = load_or_train_domain(tr, ref, self.domain_recipe, self.device, self.cache)
            self._net = dict(self._net or {}, domain=(net, h))
        return self._net["domain"][0]

    def _inception(self):
        if "inception" not in (self._net or {}):
            from .inception import load_fid_inception
            net, h = load_fid_inception(self.device)
            self._net = dict(self._net or {}, inception=(net, h))
        return self._net["inception"]

    def protocol(self, n_real: int | None, n_fake: int | None) -> dict[str, Any]:
        """The fields every feature-based number carries."""
        b = self.backbone_name
        out: dict[str, Any] = {"backbone": b, "n_real": n_real, "n_fake": n_fake, "split": self.split}
        if b == "domain":
            net = self.classifier()
            out["backbone_test_acc"] = round(float(net.meta["test_accuracy"]), 4)
            out["backbone_weights"] = self._net["domain"][1]
        elif b == "inception":
            out["backbone_weights"] = self._inception()[1][:16]
        return out

    @torch.no_grad()
    def features(self, x: torch.Tensor, with_probs: bool = False):
        """``(N, C, H, W)`` images (uint8, or float in [0, 1]) or ``(N, D)`` vectors -> backbone
        features ``(N, F)`` float32 numpy, and class probabilities ``(N, K)`` if ``with_probs``."""
        b = self.backbone_name
        if b == "raw":
            f = x.detach().float().cpu().reshape(len(x), -1).numpy()
            return (f, None) if with_probs else f
        feats, probs = [], []
        for i in range(0, len(x), self.batch_size):
            xb = _unit(x[i:i + self.batch_size]).to(self.device)
            if b == "domain":
                net = self.classifier()
                h = net.features(xb)
                logits = net.head(h)
            else:
                net = self._inception()[0]
                if xb.shape[1] not in (1, 3):
                    raise Skip(f"the inception backbone needs 1 or 3 channels, got {xb.shape[1]}")
                h, logits = net.features_and_logits(xb)
            feats.append(h.float().cpu())
            if with_probs:
                probs.append(torch.softmax(logits.float(), dim=1).cpu())
        f = torch.cat(feats).numpy()
        return (f, torch.cat(probs).numpy()) if with_probs else f

    def real_features(self) -> dict[str, Any]:
        """Features, mean and covariance of the reference split, cached on disk keyed by the
        split's contents, the backbone and its weights hash."""
        if "stats" in self._real:
            return self._real["stats"]
        ref = self.dataset(self.split)
        b = self.backbone_name
        if b == "raw":
            f = ref.x.float().reshape(len(ref.x), -1).numpy()
            mu, sigma = frechet.feature_statistics(f)
            self._real["stats"] = {"features": f, "mu": mu, "sigma": sigma}
            return self._real["stats"]
        if b == "domain":
            self.classifier()
            wh = self._net["domain"][1]
        else:
            wh = self._inception()[1]
        path = self.cache / "stats" / f"{dataset_key(ref)}-{self.split}-{b}-{wh[:12]}.npz"
        stats = _read_stats(path) if path.is_file() else None
        if stats is None:
            if self.progress:
                _log(f"real-data features of {ref.name} ({self.split}, {b}): computing (cached)")
            f = self.features(ref.x)
            mu, sigma = frechet.feature_statistics(f)
            stats = {"features": f, "mu": mu, "sigma": sigma}
            _write_stats(path, stats)
        self._real["stats"] = stats
        return stats

    # --- per-method caches (valid within one evaluate() call) -----------------------------------
    def _memo(self, method, key, make):
        d = self._per_method.setdefault(id(method), {})
        if key not in d:
            d[key] = make()
        return d[key]

    def clear_method_cache(self) -> None:
        self._per_method.clear()

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def samples(self, method) -> torch.Tensor:
        """``n_samples`` generated examples on the CPU: images quantised to uint8 like the stored
        real images (as when samples are saved as PNG for FID), vectors raw float32."""
        def make():
            g = self.generator()
            out = []
            with torch.no_grad():
                for i in range(0, self.n_samples, self.batch_size):
                    n = min(self.batch_size, self.n_samples - i)
                    xb = method.to_unit(method.sample(n, generator=g)).float().cpu()
                    out.append(_quantize(xb) if self.kind == "image" else xb)
            return torch.cat(out)
        return self._memo(method, "samples", make)

    def fake_features(self, method):
        """(features ``(n_samples, F)``, class probabilities ``(n_samples, K)`` or None for raw)."""
        return self._memo(method, "fake_features",
                          lambda: self.features(self.samples(method), with_probs=True))

    def _batched(self, fn, x: torch.Tensor, method) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for i in range(0, len(x), self.batch_size):
                out.append(fn(self.to_method(x[i:i + self.batch_size], method)).float().cpu())
        return torch.cat(out)

    def encodings(self, method, split: str | None = None) -> np.ndarray:
        """``encode`` of a whole split -> ``(N, latent)`` float64 (codes flattened per example)."""
        split = split or self.split
        ds = self.dataset(split)
        return self._memo(method, ("enc", split), lambda: self._batched(
            method.encode, ds.x, method).reshape(len(ds.x), -1).double().numpy())

    def reconstructions(self, method) -> tuple[torch.Tensor, torch.Tensor]:
        """(originals, reconstructions) of the first ``n_samples`` reference examples, both in
        [0, 1] (images) or raw (vectors), on the CPU."""
        ds = self.dataset(self.split)
        x = ds.x[:self.n_samples]

        def make():
            rec = self._batched(lambda b: method.to_unit(method.reconstruct(b)), x, method)
            orig = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
            return orig, rec
        return self._memo(method, "recon", make)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]; floats pass through as float32."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _quantize(x_unit: torch.Tensor) -> torch.Tensor:
    """float images in [0, 1] -> uint8 (round to nearest)."""
    return (x_unit.clamp(0, 1) * 255.0).round().to(torch.uint8)


def _log(msg: str) -> None:
    import sys
    print(f"[genae eval] {msg}", file=sys.stderr, flush=True)


def _gaussian_posterior(method, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, logvar)`` of the Gaussian part of q(z|x), or None when the method declares no
    posterior or its posterior has no Gaussian part."""
    if not method.supports("posterior"):
        return None
    q = method.posterior(x)
    return None if q.mean is None else (q.mean, q.logvar)


def _need_labels(ctx: EvalContext, what: str):
    tr, ref = ctx.dataset("train"), ctx.dataset(ctx.split)
    if tr.y is None or ref.y is None:
        raise Skip(f"{what} needs class labels; {tr.name} is unlabelled")
    return tr.y.numpy(), ref.y.numpy()


def _need_images(ctx: EvalContext, what: str) -> None:
    if ctx.kind != "image":
        raise Skip(f"{what} applies to images; {ctx.dataset('train').name} is vector data")


# =================================================================================================
# Generative quality
# =================================================================================================
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


# =================================================================================================
# Reconstruction and image metrics
# =================================================================================================
def recon_mse(method, ctx: EvalContext) -> dict[str, Any]:
    """Mean squared reconstruction error per element ([0, 1] pixels for images, raw for vectors),
    and the per-example sum of squared errors."""
    orig, rec = ctx.reconstructions(method)
    se = (rec.double() - orig.double()) ** 2
    return {"value": float(se.mean()), "sse_per_example": float(se.flatten(1).sum(1).mean()),
            "scale": "[0,1] pixels" if ctx.kind == "image" else "raw", "n": len(orig),
            "split": ctx.split}


SHARPNESS_NOTE = ("variance of the 3x3 Laplacian ('valid' borders) of the BT.601 luminance, "
                  "pixels in [0,1], population variance per image, mean over images")


def sharpness_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Sharpness of samples (``value``), of reconstructions and of the real reference images."""
    _need_images(ctx, "sharpness")
    out: dict[str, Any] = {"normalisation": SHARPNESS_NOTE, "split": ctx.split}
    try:
        s = image.sharpness_per_image(_unit(ctx.samples(method)))
        out.update(value=float(s.mean()), std=float(s.std()), n_fake=len(s))
    except Unsupported as e:
        out["samples"] = f"skipped: {e}"
    try:
        orig, rec = ctx.reconstructions(method)
        s = image.sharpness_per_image(rec)
        out.update(reconstructions=float(s.mean()), reconstructions_std=float(s.std()))
    except Unsupported as e:
        out["reconstructions"] = f"skipped: {e}"
        orig = ctx.dataset(ctx.split).x[:ctx.n_samples].float() / 255.0
    s = image.sharpness_per_image(orig)
    out.update(real=float(s.mean()), real_std=float(s.std()), n_real=len(s))
    if "value" not in out and "reconstructions_std" not in out:
        raise Skip(f"{type(method).__name__} can neither sample nor reconstruct")
    return out


def recon_class_acc(method, ctx: EvalContext) -> dict[str, Any]:
    """Domain-classifier accuracy on reconstructions: absolute (true label) and relative (the
    classifier's own label for the original), as in LSR-GAN."""
    _need_images(ctx, "recon-class-acc")
    _, y = _need_labels(ctx, "recon-class-acc")
    net = ctx.classifier()
    orig, rec = ctx.reconstructions(method)
    y = torch.as_tensor(y[:len(orig)])
    with torch.no_grad():
        p_rec = torch.cat([net(rec[i:i + ctx.batch_size].to(ctx.device)).argmax(1).cpu()
                           for i in range(0, len(rec), ctx.batch_size)])
        p_orig = torch.cat([net(orig[i:i + ctx.batch_size].to(ctx.device)).argmax(1).cpu()
                            for i in range(0, len(orig), ctx.batch_size)])
    return {"absolute": float((p_rec == y).double().mean()),
            "relative": float((p_rec == p_orig).double().mean()),
            "classifier_on_originals": float((p_orig == y).double().mean()),
            "classifier": "domain", "backbone_test_acc": round(float(net.meta["test_accuracy"]), 4),
            "n": len(orig), "split": ctx.split}


def decode_variance(method, ctx: EvalContext, n_images: int = 500, n_draws: int = 10) -> dict[str, Any]:
    """Mean per-pixel variance (ddof=1, [0, 1] pixels) among decodings of ``n_draws`` samples
    z ~ q(z|x), over ``n_images`` reference images (LSR-GAN's 'variance' column)."""
    if not (method.supports("posterior_sample") and method.supports("decode")):
        raise Skip(f"{type(method).__name__} has no stochastic encoder q(z|x) to decode draws of "
                   "(no posterior_sample)")
    x = ctx.dataset(ctx.split).x[:n_images]
    g = ctx.generator(1)
    per_image = []
    with torch.no_grad():
        for i in range(0, len(x), ctx.batch_size):
            xb = ctx.to_method(x[i:i + ctx.batch_size], method)
            draws = [method.to_unit(method.decode(method.posterior_sample(xb, generator=g))).double().cpu()
                     for _ in range(n_draws)]
            v = torch.stack(draws).var(dim=0, unbiased=True)
            per_image.append(v.flatten(1).mean(1))
    v = torch.cat(per_image)
    return {"value": float(v.mean()), "n_images": len(v), "n_draws": n_draws,
            "scale": "[0,1] pixels" if ctx.kind == "image" else "raw", "split": ctx.split}


# =================================================================================================
# Representation metrics (encoder features)
# =================================================================================================
def _enc(method, ctx, split=None) -> np.ndarray:
    return ctx.encodings(method, split)


def ns_acc(method, ctx: EvalContext, n_components: int = 10) -> dict[str, Any]:
    """Nearest-subspace accuracy, centred (PCA) and uncentred (SVD), fitted on train features."""
    ytr, yte = _need_labels(ctx, "ns-acc")
    ztr, zte = _enc(method, ctx, "train"), _enc(method, ctx)
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
    ytr, yte = _need_labels(ctx, "knn-acc")
    ztr, zte = _enc(method, ctx, "train"), _enc(method, ctx)
    return {"value": clustering.knn_accuracy(ztr, ytr, zte, yte, k=k), "k": k,
            "n_train": len(ztr), "n_test": len(zte), "split": ctx.split}


def linear_probe(method, ctx: EvalContext) -> dict[str, Any]:
    """Multinomial logistic regression (standardised features, L-BFGS, L2 1e-4) train -> reference."""
    ytr, yte = _need_labels(ctx, "linear-probe")
    ztr, zte = _enc(method, ctx, "train"), _enc(method, ctx)
    return {"value": clustering.linear_probe_accuracy(ztr, ytr, zte, yte), "weight_decay": 1e-4,
            "n_train": len(ztr), "n_test": len(zte), "split": ctx.split}


def _clusters(method, ctx: EvalContext) -> tuple[np.ndarray, str]:
    """Cluster assignments of the reference split: the method's own discrete code where it has
    one (``method.cluster(x)`` -> labels ``(B,)`` or probabilities ``(B, K)``), else k-means with
    K = number of classes on the encoder features."""
    def make():
        ds = ctx.dataset(ctx.split)
        if method.supports("cluster"):
            out = ctx._batched(method.cluster, ds.x, method)
            return (out.argmax(1) if out.ndim == 2 else out).long().numpy(), "method.cluster"
        k = ds.num_classes or 10
        return clustering.kmeans(_enc(method, ctx), k, seed=ctx.seed), f"kmeans(k={k}) on encode"
    return ctx._memo(method, "clusters", make)


def cluster_acc(method, ctx: EvalContext) -> dict[str, Any]:
    """Unsupervised accuracy (best one-to-one cluster-to-label matching)."""
    _, y = _need_labels(ctx, "cluster-acc")
    pred, how = _clusters(method, ctx)
    return {"value": clustering.clustering_accuracy(y, pred), "assignments": how, "n": len(y),
            "split": ctx.split}


def nmi_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Normalised mutual information between clusters and labels (arithmetic normalisation)."""
    _, y = _need_labels(ctx, "nmi")
    pred, how = _clusters(method, ctx)
    return {"value": clustering.nmi(y, pred), "assignments": how, "n": len(y), "split": ctx.split}


def feature_rank_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Numerical rank (σ > 1e-3 σ_max, centred) and effective rank of the reference features;
    per-class ranks and the mean cosine of principal angles between class subspaces if labelled."""
    z = _enc(method, ctx)
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
    z = _enc(method, ctx)
    y = ctx.dataset(ctx.split).y
    if y is None:
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return {"R": subspace.coding_rate(zn, 0.5), "eps2": 0.5, "normalized": True, "n": len(z),
                "split": ctx.split, "note": "unlabelled data: Rc and delta_R need classes"}
    out = subspace.rate_reduction(z, y.numpy(), eps2=0.5, normalize=True)
    return {"value": out["delta_R"], **out, "eps2": 0.5, "normalized": True, "n": len(z),
            "split": ctx.split}


# =================================================================================================
# Latent and disentanglement metrics
# =================================================================================================
def mig_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """MIG (Chen et al. 2018) of sampled codes (z ~ q(z|x) where the method has ``posterior``,
    else ``encode``) against the chosen ground-truth factors, 20 bins."""
    ds = ctx.dataset(ctx.split)
    if ds.factors is None:
        raise Skip(f"mig needs ground-truth factors; {ds.name} has none")
    names = list(ds.factor_names) or [f"f{i}" for i in range(ds.factors.shape[1])]
    chosen = list(ctx.mig_factors) if ctx.mig_factors is not None else [n for n in names if n != "shape"]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise Skip(f"unknown factors {unknown}; {ds.name} has {names}")
    cols = [names.index(n) for n in chosen]
    if method.supports("posterior_sample"):
        g = ctx.generator(2)
        codes = ctx._batched(lambda xb: method.posterior_sample(xb, generator=g), ds.x, method)
        codes = codes.reshape(len(ds.x), -1).numpy()
        how = "sampled from q(z|x)"
    else:
        codes, how = _enc(method, ctx), "encode (deterministic)"
    out = disentangle.mig(codes, ds.factors.numpy()[:, cols], n_bins=20)
    return {"value": out["mig"], "per_factor": dict(zip(chosen, map(float, out["per_factor"]))),
            "codes": how, "n_bins": 20, "n": len(codes), "split": ctx.split}


def _active_mask(method, ctx: EvalContext) -> tuple[np.ndarray | None, str, dict[str, Any]]:
    """(active mask over latent dims or None, how, extras)."""
    if method.supports("active_dims"):
        m = method.active_dims()
        m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
        if m.dtype != bool:
            if m.ndim == 0:                                     # a count
                return None, "method.active_dims (count)", {"count": int(m)}
            dim = _enc(method, ctx).shape[1]
            idx, m = m.astype(int), np.zeros(dim, dtype=bool)   # indices
            m[idx] = True
        return m, "mask", {}
    ds = ctx.dataset(ctx.split)
    first = _gaussian_posterior(method, ctx.to_method(ds.x[:1], method))
    if first is not None:
        mus, lvs = [], []
        with torch.no_grad():
            for i in range(0, len(ds.x), ctx.batch_size):
                mu, lv = _gaussian_posterior(method, ctx.to_method(ds.x[i:i + ctx.batch_size], method))
                mus.append(mu.double().cpu().flatten(1))
                lvs.append(lv.double().cpu().flatten(1))
        active, kl = disentangle.kl_active_dims(torch.cat(mus), torch.cat(lvs), 0.01)
        return active, "KL > 0.01 nats", {"mean_kl": [round(float(v), 4) for v in kl]}
    return None, "feature rank", {}


def active_dims(method, ctx: EvalContext) -> dict[str, Any]:
    """Active latent units: the method's mask, KL-active units (average KL > 0.01) for Gaussian
    encoders, else the feature rank of the encodings (with the count of dims whose variance
    exceeds 1 % of the largest as a companion)."""
    mask, how, extra = _active_mask(method, ctx)
    if "count" in extra:
        return {"value": extra["count"], "method": how}
    if mask is not None:
        return {"value": int(mask.sum()), "dim": int(mask.size), "active": np.flatnonzero(mask).tolist(),
                "method": how, **extra, "split": ctx.split}
    z = _enc(method, ctx)
    var = z.var(axis=0)
    return {"value": subspace.feature_rank(z), "dim": int(z.shape[1]), "method": how,
            "variance_active": int((var > 0.01 * var.max()).sum()) if var.max() > 0 else 0,
            "split": ctx.split}


def nac(method, ctx: EvalContext) -> dict[str, Any]:
    """Normalised absolute covariance of the reference encodings over active dimensions."""
    z = _enc(method, ctx)
    mask, how, _ = _active_mask(method, ctx)
    if mask is not None and mask.size == z.shape[1]:
        z = z[:, mask]
    else:
        how = "all non-constant dims"
    value = disentangle.normalized_absolute_covariance(z)
    if not np.isfinite(value):
        raise Skip(f"nac needs at least two active dimensions; found {z.shape[1]}")
    return {"value": value, "n_dims": int(z.shape[1]), "dims": how, "n": len(z), "split": ctx.split}


QMM_SHEAR = np.linspace(-0.4, 0.4, 11)   # x' = x + s·y; ±0.4 ≈ ±22° of slant
QMM_WIDTH = np.linspace(0.7, 1.3, 11)    # horizontal scale factor about the centre


def qmm_score(method, ctx: EvalContext, n_images: int = 500) -> dict[str, Any]:
    """QMM transform score: λ1/λ2 of the PCA of per-image-centred codes of 500 reference images
    under 11 strengths of shear (slant) and horizontal scaling (width). Strength ranges are our
    choice (the paper does not give them): shear s ∈ [-0.4, 0.4], width ×[0.7, 1.3]."""
    _need_images(ctx, "qmm-score")
    x = ctx.dataset(ctx.split).x[:n_images].float() / 255.0
    out: dict[str, Any] = {}
    for name, fn, strengths in (("slant", image.shear, QMM_SHEAR), ("width", image.hscale, QMM_WIDTH)):
        codes = []
        with torch.no_grad():
            for s in strengths:
                xt = (fn(x, float(s)) * 255.0).round().clamp(0, 255).to(torch.uint8)
                codes.append(_batched_encode(method, ctx, xt))
        r = disentangle.transform_score(np.stack(codes, axis=1))
        out[name] = r["score"]
    return {**out, "value": out["slant"], "n_images": len(x), "strengths": len(QMM_SHEAR),
            "shear_range": [float(QMM_SHEAR[0]), float(QMM_SHEAR[-1])],
            "width_range": [float(QMM_WIDTH[0]), float(QMM_WIDTH[-1])], "split": ctx.split}


def _batched_encode(method, ctx, x_uint8: torch.Tensor) -> np.ndarray:
    return ctx._batched(method.encode, x_uint8, method).reshape(len(x_uint8), -1).double().numpy()


def run_metric(spec: MetricSpec, method, ctx: EvalContext) -> dict[str, Any]:
    """Call one metric; ``Skip`` and ``Unsupported`` become ``{"skipped": reason}``."""
    t0 = time.perf_counter()
    try:
        out = spec.fn(method, ctx)
    except (Skip, Unsupported) as e:
        out = {"skipped": str(e)}
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
