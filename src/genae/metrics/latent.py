"""Latent codes and disentanglement: ``mig``, ``dci``, ``sap``, ``factorvae-score``, ``modularity``,
``qmm-score``, ``nac``, ``active-dims``.

Codes are ``method.encode`` of the reference split (``mig`` samples z ~ q(z|x) where the method
has ``posterior_sample``; ``dci``, ``sap``, ``factorvae-score`` and ``modularity`` take the mean of
q(z|x) where it is Gaussian, disentanglement_lib's "mean representation"); active dimensions come
from the method's own mask (``active_dims``), else from the KL of a Gaussian posterior, else from
the feature rank.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import disentangle, disentangle_scores, image, subspace
from .base import Skip, need_images, quantize, to_unit
from .context import EvalContext

__all__ = ["DCI_IMPORTANCE", "DCI_LASSO_ALPHA", "FACTORVAE", "QMM_INVERSION", "QMM_SHEAR", "QMM_WIDTH",
           "active_dims", "dci_metric", "factorvae_metric", "informativeness", "mig_metric",
           "mig_sampled_metric", "modularity_metric", "nac", "posterior_arrays", "qmm_score", "sap_metric",
           "total_correlation_metric"]


def _factors(ctx: EvalContext, metric: str, with_shape: bool = False) -> tuple[list[str], np.ndarray]:
    """(chosen factor names, ``(N, F)`` factors) of the reference split: ``ctx.mig_factors``, else
    all but "shape" (Chen et al. 2018 leave dSprites' shape out of the continuous score), or every
    factor with ``with_shape`` (the IMAE appendix-E variant, where y can take shape)."""
    ds = ctx.dataset(ctx.split)
    if ds.factors is None:
        raise Skip(f"{metric} needs ground-truth factors; {ds.name} has none")
    names = list(ds.factor_names) or [f"f{i}" for i in range(ds.factors.shape[1])]
    if with_shape:
        chosen = names
    else:
        chosen = list(ctx.mig_factors) if ctx.mig_factors is not None else [n for n in names if n != "shape"]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise Skip(f"unknown factors {unknown}; {ds.name} has {names}")
    return chosen, ds.factors.numpy()[:, [names.index(n) for n in chosen]]


def posterior_arrays(method, ctx: EvalContext) -> dict[str, np.ndarray]:
    """q(·|x) of the reference split, float64: "mean", "logvar", "z" (one draw z ~ q(z|x) from
    ``ctx.generator(2)``), each ``(N, d)``, and "probs" ``(N, K)`` for a categorical or hybrid
    posterior (absent keys: no such part). Memoised per method within an ``evaluate`` call."""
    if not method.supports("posterior"):
        raise Skip(f"{type(method).__name__} has no posterior q(z|x)")

    def make() -> dict[str, np.ndarray]:
        ds, g = ctx.dataset(ctx.split), ctx.generator(2)
        parts: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            for i in range(0, len(ds.x), ctx.batch_size):
                q = method.posterior(ctx.to_method(ds.x[i:i + ctx.batch_size], method))
                if q.mean is not None:
                    mean, lv = q.mean.flatten(1).double().cpu(), q.logvar.flatten(1).double().cpu()
                    eps = torch.randn(mean.shape, generator=g, dtype=torch.float64)
                    for k, v in (("mean", mean), ("logvar", lv), ("z", mean + (0.5 * lv).exp() * eps)):
                        parts.setdefault(k, []).append(v)
                if q.logits is not None:
                    parts.setdefault("probs", []).append(q.probs.double().cpu())
        return {k: torch.cat(v).numpy() for k, v in parts.items()}

    return ctx.memo(method, ("posterior", ctx.split), make)


def mig_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """MIG (Chen et al. 2018), the disentanglement_lib-style histogram estimator (20 bins), of sampled
    codes against the chosen ground-truth factors. Codes: z ~ q(z|x) of the posterior's Gaussian part
    where the method has one (a hybrid posterior's continuous code alone), else ``encode``. With a
    categorical code too, ``with_y`` is the IMAE appendix-E variant: the code [z, argmax y] against
    every factor, shape included."""
    chosen, factors = _factors(ctx, "mig")
    post = posterior_arrays(method, ctx) if method.supports("posterior") else {}
    if "z" in post:
        codes, how = post["z"], "sampled from q(z|x)" + (" (continuous part)" if "probs" in post else "")
    else:
        codes, how = ctx.encodings(method), "encode (deterministic)"
    out = disentangle.mig(codes, factors, n_bins=20)
    res = {"value": out["mig"], "per_factor": dict(zip(chosen, map(float, out["per_factor"]))),
           "codes": how, "n_bins": 20, "n": len(codes), "split": ctx.split}
    if "z" in post and "probs" in post:
        names_y, all_f = _factors(ctx, "mig", with_shape=True)
        with_y = disentangle.mig(np.concatenate([codes, post["probs"].argmax(1)[:, None]], 1), all_f, n_bins=20)
        res["with_y"] = with_y["mig"]
        res["with_y_per_factor"] = dict(zip(names_y, map(float, with_y["per_factor"])))
    return res


def mig_sampled_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """MIG with β-TCVAE's estimator (Chen et al. 2018): I(z_j; v_k) from Monte-Carlo entropies of the
    reference split's aggregate posterior (``disentangle.mig_sampled``), one z ~ q(z|x) per example,
    shape excluded; ``with_y`` adds the categorical code and every factor (IMAE appendix E). One
    estimate of every I(latent; factor) serves both scores."""
    chosen, _ = _factors(ctx, "mig-sampled")
    post = posterior_arrays(method, ctx)
    if "z" not in post:
        raise Skip("mig-sampled needs a Gaussian part of q(z|x)")
    names, factors = _factors(ctx, "mig-sampled", with_shape=True)
    bar = ctx.bar(disentangle.mig_sampled_pairs(factors), "mig-sampled: aggregate-posterior entropies", "pair")
    try:
        out = disentangle.mig_sampled(post["z"], post["mean"], post["logvar"], factors, post.get("probs"),
                                      tick=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    d, cols = post["z"].shape[1], [names.index(n) for n in chosen]
    gaps = disentangle.mig_gaps(out["mi"][:d][:, cols], out["h_v"][cols])
    res = {"value": float(np.nanmean(gaps)) if np.isfinite(gaps).any() else float("nan"),
           "per_factor": dict(zip(chosen, map(float, gaps))),
           "estimator": "beta-tcvae (aggregate posterior of the split)", "n": len(post["z"]), "split": ctx.split}
    if "probs" in post:
        res["with_y"] = out["mig"]
        res["with_y_per_factor"] = dict(zip(names, map(float, out["per_factor"])))
    return res


def informativeness(method, ctx: EvalContext) -> dict[str, Any]:
    """IMAE Proposition 1 per continuous dimension: ½·log(1 + Var_x[μ_k] / E_x[σ_k²]) (nats) over
    the reference split; ``value`` is their sum."""
    post = posterior_arrays(method, ctx)
    if "mean" not in post:
        raise Skip("informativeness needs a Gaussian part of q(z|x)")
    out = disentangle.gaussian_informativeness(post["mean"], post["logvar"])
    return {"value": float(out["informativeness"].sum()),
            **{k: [round(float(v), 4) for v in a] for k, a in out.items()}, "n": len(post["mean"]),
            "split": ctx.split}


def total_correlation_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """TC of the continuous code's aggregate posterior over (at most 5,000 of) the reference split,
    one z ~ q(z|x) per example (``disentangle.total_correlation_estimate``, nats)."""
    post = posterior_arrays(method, ctx)
    if "z" not in post:
        raise Skip("tc needs a Gaussian part of q(z|x)")
    n = min(5000, len(post["z"]))
    value = disentangle.total_correlation_estimate(post["z"][:n], post["mean"][:n], post["logvar"][:n])
    return {"value": value, "n": n, "estimator": "empirical aggregate posterior", "split": ctx.split}


# --- supervised disentanglement scores (disentangle_scores.py) -----------------------------------

#: dci's importance: "lasso" (Eastwood & Williams' regressor, no dependency) or "gbt"
#: (disentanglement_lib's gradient-boosted trees; needs scikit-learn)
DCI_IMPORTANCE = "lasso"
#: the lasso's α on standardized codes and targets (the DCI authors' reference code)
DCI_LASSO_ALPHA = 0.02
#: factorvae-score's protocol: disentanglement_lib's defaults (L = 64 examples per vote, 10,000
#: training and 5,000 evaluation votes, 10,000 examples for the per-dimension std; prune_std 0
#: keeps every non-constant dimension)
FACTORVAE = {"batch_size": 64, "num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000,
             "prune_std": 0.0}
_FACTOR_LEVELS, _FACTOR_BINS = 64, 20


def _mean_codes(method, ctx: EvalContext) -> tuple[np.ndarray, str]:
    """(reference-split codes ``(N, D)``, how): the mean of the Gaussian part of q(z|x) where the
    method has one (disentanglement_lib scores the mean representation), else ``encode``."""
    post = posterior_arrays(method, ctx) if method.supports("posterior") else {}
    if "mean" in post:
        return post["mean"], "mean of q(z|x)" + (" (continuous part)" if "probs" in post else "")
    return ctx.encodings(method), "encode (deterministic)"


def _factor_classes(ctx: EvalContext, metric: str) -> tuple[list[str], np.ndarray]:
    """(names, ``(N, F)`` integer classes) of every ground-truth factor of the reference split,
    shape included (disentanglement_lib scores all of them): a factor with at most 64 distinct
    values keeps them as classes, a continuous one is cut into 20 equal-width bins (as ``mig``)."""
    names, v = _factors(ctx, metric, with_shape=True)
    return names, disentangle.discretize(v, _FACTOR_BINS, max_levels=_FACTOR_LEVELS)


def _split_rule(ctx: EvalContext) -> str:
    pct = round(100 * disentangle_scores.TRAIN_FRACTION)
    return f"permutation seeded {ctx.seed}: first {pct} % fit, the rest scored"


def _named(names: list[str], values) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, values)}


def dci_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """DCI (Eastwood & Williams 2018): disentanglement (``value``), completeness and informativeness
    of the reference split's mean codes against every factor (``disentangle_scores.dci``). The
    importance comes from ``DCI_IMPORTANCE``: a lasso per factor (α = ``DCI_LASSO_ALPHA`` = 0.02 on
    standardized codes and class index; the paper's) or, with scikit-learn, gradient-boosted trees
    (disentanglement_lib's). Predictors fit on 80 % of the split (a seeded permutation), accuracy
    on the rest."""
    names, v = _factor_classes(ctx, "dci")
    codes, how = _mean_codes(method, ctx)
    try:
        out = disentangle_scores.dci(codes, v, importance=DCI_IMPORTANCE, alpha=DCI_LASSO_ALPHA, seed=ctx.seed)
    except ImportError as e:
        raise Skip(str(e)) from e
    regressor = (f"lasso (alpha={DCI_LASSO_ALPHA}, standardized codes and class index)"
                 if DCI_IMPORTANCE == "lasso" else "gbt (sklearn GradientBoostingClassifier, defaults)")
    res = {"value": out["disentanglement"], "disentanglement": out["disentanglement"],
           "completeness": out["completeness"], "informativeness": out["informativeness"],
           "informativeness_train": out["informativeness_train"],
           "completeness_per_factor": _named(names, out["per_factor"]),
           "informativeness_per_factor": _named(names, out["per_factor_accuracy"]),
           "importance": [[round(float(a), 6) for a in row] for row in out["importance"]]}
    if "nrmse" in out:
        res["nrmse"] = out["nrmse"]
    return {**res, "codes": how, "regressor": regressor, "factors": names, "n": len(codes),
            "n_train": out["n_train"], "n_test": out["n_test"], "split_rule": _split_rule(ctx), "split": ctx.split}


def sap_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """SAP (Kumar et al. 2018): per factor, the gap between the two code dimensions that predict it
    best alone, averaged (``disentangle_scores.sap``): disentanglement_lib's discrete-factor
    protocol, a one-vs-rest linear SVM per dimension (C = 0.01, balanced class weights) fitted on
    80 % of the reference split's mean codes, plain accuracy on the rest."""
    names, v = _factor_classes(ctx, "sap")
    codes, how = _mean_codes(method, ctx)
    out = disentangle_scores.sap(codes, v, seed=ctx.seed)
    return {"value": out["sap"], "per_factor": _named(names, out["per_factor"]),
            "scores": [[round(float(a), 6) for a in row] for row in out["scores"]], "codes": how,
            "classifier": "linear SVM per dimension (one-vs-rest squared hinge, C=0.01, balanced)",
            "factors": names, "n": len(codes), "n_train": out["n_train"], "n_test": out["n_test"],
            "split_rule": _split_rule(ctx), "split": ctx.split}


def modularity_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """Modularity (``value``) and explicitness (Ridgeway & Mozer 2018) of the reference split's mean
    codes against every factor (``disentangle_scores.modularity`` / ``explicitness``): modularity
    from the plug-in mutual information of 20-bin codes over the whole split; explicitness the mean
    ROC AUC of one-vs-rest logistic regressions (C = 1) fitted on 80 % of it, scored on the rest."""
    names, v = _factor_classes(ctx, "modularity")
    codes, how = _mean_codes(method, ctx)
    out = disentangle_scores.modularity_explicitness(codes, v, n_bins=20, seed=ctx.seed)
    return {"value": out["modularity"], "modularity": out["modularity"], "explicitness": out["explicitness"],
            "explicitness_train": out["explicitness_train"],
            "explicitness_per_factor": _named(names, out["explicitness_per_factor"]),
            "per_dim": [round(float(a), 6) for a in out["per_dim"]], "codes": how, "n_bins": 20,
            "classifier": "one-vs-rest logistic regression (L2, C=1, standardized codes)", "factors": names,
            "n": len(codes), "n_train": out["n_train"], "n_test": out["n_test"], "split_rule": _split_rule(ctx),
            "split": ctx.split}


def factorvae_metric(method, ctx: EvalContext) -> dict[str, Any]:
    """The FactorVAE score (Kim & Mnih 2018; ``disentangle_scores.factorvae_score``) with
    disentanglement_lib's protocol (``FACTORVAE``): votes from batches of freshly rendered images
    that share one factor's value, the codes the mean of q(z|x) (else ``encode``). Factors are
    drawn uniformly from the whole grid, not the reference split; needs a dataset genae can render
    for chosen factor values: the procedural ``dsprites`` (``render_dsprites``), all five factors."""
    from ..data.dsprites import DSPRITES_FACTOR_NAMES, DSPRITES_SIZES, dsprites_factor_values, render_dsprites

    ds = ctx.dataset(ctx.split)
    if ds.factors is None:
        raise Skip(f"factorvae-score needs ground-truth factors; {ds.name} has none")
    if ds.name != "dsprites" or tuple(ds.factor_names) != DSPRITES_FACTOR_NAMES:
        raise Skip(f"factorvae-score needs images rendered for chosen factor values, which genae can do only "
                   f"for the procedural dsprites; {ds.name} has only its stored examples"
                   + (" (the official file's images differ from the renderer's by edge pixels)"
                      if ds.name == "dsprites-npz" else ""))
    # the same codes as the other scores: the Gaussian mean where q(z|x) has one (a one-image probe)
    use_mean = (method.supports("posterior")
                and method.posterior(ctx.to_method(ds.x[:1], method)).mean is not None)
    how = "mean of q(z|x)" if use_mean else "encode (deterministic)"
    values = dsprites_factor_values()

    def code(xb: torch.Tensor) -> torch.Tensor:
        return (method.posterior(xb).mean if use_mean else method.encode(xb)).flatten(1)

    def represent(classes: np.ndarray) -> np.ndarray:
        c = torch.from_numpy(classes)
        x = render_dsprites(c[:, 0], *(values[k][c[:, k]] for k in range(1, 5)))
        return ctx.batched(code, x, method).double().numpy()

    p = FACTORVAE
    total = p["num_variance_estimate"] + p["batch_size"] * (p["num_train"] + p["num_eval"])
    bar = ctx.bar(total, "factorvae-score: rendering and encoding", "image")
    try:
        out = disentangle_scores.factorvae_score(represent, DSPRITES_SIZES, np.random.default_rng(ctx.seed),
                                                 **p, tick=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return {"value": out["score"], "train_accuracy": out["train_accuracy"],
            "num_active_dims": out["num_active_dims"],
            "classifier": [DSPRITES_FACTOR_NAMES[k] if k >= 0 else None for k in out["classifier"]],
            "codes": how, **p, "factors": list(DSPRITES_FACTOR_NAMES),
            "data": "dsprites grid, factors drawn uniformly, images rendered", "seed": ctx.seed}


def _gaussian_posterior(method, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, logvar)`` of the Gaussian part of q(z|x), or None when the method declares no
    posterior or its posterior has no Gaussian part."""
    if not method.supports("posterior"):
        return None
    q = method.posterior(x)
    return None if q.mean is None else (q.mean, q.logvar)


def _active_mask(method, ctx: EvalContext) -> tuple[np.ndarray | None, str, dict[str, Any]]:
    """(active mask over latent dims or None, how, extras)."""
    if method.supports("active_dims"):
        m = method.active_dims()
        m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
        if m.dtype != bool:
            if m.ndim == 0:                                     # a count
                return None, "method.active_dims (count)", {"count": int(m)}
            dim = ctx.encodings(method).shape[1]
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
    z = ctx.encodings(method)
    var = z.var(axis=0)
    return {"value": subspace.feature_rank(z), "dim": int(z.shape[1]), "method": how,
            "variance_active": int((var > 0.01 * var.max()).sum()) if var.max() > 0 else 0,
            "split": ctx.split}


def nac(method, ctx: EvalContext) -> dict[str, Any]:
    """Normalised absolute covariance of the reference encodings over active dimensions."""
    z = ctx.encodings(method)
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


# Encoding by optimisation for generators (codes of transformed images, ``qmm_score``): the
# manifold of each source image is chosen by ``select_steps`` Adam steps per manifold on the
# untransformed image; that image is inverted with ``restarts`` random starts and ``steps`` steps;
# each further strength starts from the code of its neighbour one strength closer to the identity
# (``walk_steps`` steps): a continuation along the transform, so the codes follow one basin.
QMM_INVERSION = {"steps": 200, "restarts": 2, "walk_steps": 50, "select_steps": 50, "lr": 0.1}


def qmm_score(method, ctx: EvalContext) -> dict[str, Any]:
    """QMM transform score: λ1/λ2 of the PCA of per-image-centred codes of ``ctx.qmm_images``
    (500, the paper's) reference images under 11 strengths of shear (slant) and horizontal scaling
    (width). Strength ranges are our choice (the paper does not give them): shear s ∈ [-0.4, 0.4],
    width ×[0.7, 1.3]; the middle strength of each is the identity.

    Codes: ``encode`` where the method has an encoder; otherwise encoding by optimisation on the
    method's learned manifolds (``QMM_INVERSION``: each source image keeps the manifold that fits
    its untransformed version best, so the codes measure motion within one manifold)."""
    need_images(ctx, "qmm-score")
    if not method.supports("encode") and not method.supports("manifolds"):
        raise Skip(f"qmm-score needs an encoder or generator manifolds; {type(method).__name__} has neither")
    x = to_unit(ctx.dataset(ctx.split).x[:ctx.qmm_images])
    transforms = (("slant", image.shear, QMM_SHEAR), ("width", image.hscale, QMM_WIDTH))
    by_inversion = not method.supports("encode")
    out: dict[str, Any] = {}
    walks = sum(len(s) - 1 for _, _, s in transforms)  # strengths reached by walking, over both transforms
    start = _InversionStart(method, ctx, x, walks) if by_inversion else None
    try:
        for name, fn, strengths in transforms:
            xs = [quantize(fn(x, float(s))) for s in strengths]
            if by_inversion:
                codes = start.walk(xs, len(xs) // 2)
            else:
                with torch.no_grad():
                    codes = [ctx.encode(method, xt) for xt in xs]
            out[name] = disentangle.transform_score(np.stack(codes, axis=1))["score"]
    finally:
        if start is not None:
            start.close()
    extra = ({"codes": "inversion", "inversion": dict(QMM_INVERSION),
              "manifold": "best fit of the untransformed image"} if by_inversion else {})
    return {**out, "value": out["slant"], **extra, "n_images": len(x), "strengths": len(QMM_SHEAR),
            "shear_range": [float(QMM_SHEAR[0]), float(QMM_SHEAR[-1])],
            "width_range": [float(QMM_WIDTH[0]), float(QMM_WIDTH[-1])], "split": ctx.split}


class _InversionStart:
    """Per source image: its manifold and the code of its untransformed version (shared by both
    transforms), then ``walk`` inverts the strengths outward from the identity. ``walks``: how many
    non-identity strengths ``walk`` will be given in all (the progress bar's total, in Adam steps)."""

    def __init__(self, method, ctx: EvalContext, x: torch.Tensor, walks: int):
        from ..inversion import invert, invert_multi

        self.method, self.ctx, kw = method, ctx, QMM_INVERSION
        self.man = man = method.manifolds()
        self.index, self.z = [], []
        select = man.count * kw["select_steps"] if man.count > 1 else 0
        batches = -(-len(x) // ctx.batch_size)
        self.bar = ctx.bar(batches * (select + kw["steps"] + walks * kw["walk_steps"]),
                           "qmm-score: encoding by optimisation", "step")
        self.tick = self.bar.update if self.bar is not None else None
        xq = quantize(x)
        for i in range(0, len(x), ctx.batch_size):
            xb = ctx.to_method(xq[i:i + ctx.batch_size], method)
            if man.count > 1:
                idx = invert_multi([man.generator(k) for k in range(man.count)], xb, man.dim,
                                   steps=kw["select_steps"], restarts=1, lr=kw["lr"], tick=self.tick).index
            else:
                idx = torch.zeros(len(xb), dtype=torch.long, device=xb.device)
            fit = invert(self._on(idx.repeat(kw["restarts"])), xb, man.dim, steps=kw["steps"],
                         restarts=kw["restarts"], lr=kw["lr"], tick=self.tick)
            self.index.append(idx)
            self.z.append(fit.z)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _on(self, index: torch.Tensor):
        return lambda z: self.man.render(z, index)

    def walk(self, xs: list[torch.Tensor], identity: int) -> list[np.ndarray]:
        """Codes ``(N, dim)`` per strength: the identity's, then each neighbour from the last."""
        from ..inversion import invert

        ctx, kw = self.ctx, QMM_INVERSION
        codes: list[list[torch.Tensor]] = [[] for _ in xs]
        for b, (idx, z_id) in enumerate(zip(self.index, self.z)):
            sl = slice(b * ctx.batch_size, (b + 1) * ctx.batch_size)
            codes[identity].append(z_id)
            for order in (range(identity + 1, len(xs)), range(identity - 1, -1, -1)):
                z = z_id
                for k in order:
                    xb = ctx.to_method(xs[k][sl], self.method)
                    z = invert(self._on(idx), xb, self.man.dim, steps=kw["walk_steps"], restarts=1,
                               lr=kw["lr"], start=z, tick=self.tick).z
                    codes[k].append(z)
        return [torch.cat(c).double().cpu().numpy() for c in codes]
