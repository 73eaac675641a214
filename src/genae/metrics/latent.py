"""Latent codes and disentanglement: ``mig``, ``qmm-score``, ``nac``, ``active-dims``.

Codes are ``method.encode`` of the reference split (``mig`` samples z ~ q(z|x) where the method
has ``posterior_sample``); active dimensions come from the method's own mask (``active_dims``),
else from the KL of a Gaussian posterior, else from the feature rank.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import disentangle, image, subspace
from .base import Skip, need_images, quantize, to_unit
from .context import EvalContext

__all__ = ["QMM_INVERSION", "QMM_SHEAR", "QMM_WIDTH", "active_dims", "mig_metric", "nac", "qmm_score"]


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
        codes = ctx.batched(lambda xb: method.posterior_sample(xb, generator=g), ds.x, method)
        codes = codes.reshape(len(ds.x), -1).numpy()
        how = "sampled from q(z|x)"
    else:
        codes, how = ctx.encodings(method), "encode (deterministic)"
    out = disentangle.mig(codes, ds.factors.numpy()[:, cols], n_bins=20)
    return {"value": out["mig"], "per_factor": dict(zip(chosen, map(float, out["per_factor"]))),
            "codes": how, "n_bins": 20, "n": len(codes), "split": ctx.split}


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


QMM_INVERSION = {"steps": 200, "restarts": 2, "lr": 0.1}  # encoding by optimisation for generators


def qmm_score(method, ctx: EvalContext, n_images: int = 500) -> dict[str, Any]:
    """QMM transform score: λ1/λ2 of the PCA of per-image-centred codes of 500 reference images
    under 11 strengths of shear (slant) and horizontal scaling (width). Strength ranges are our
    choice (the paper does not give them): shear s ∈ [-0.4, 0.4], width ×[0.7, 1.3].

    Codes: ``encode`` where the method has an encoder; otherwise encoding by optimisation
    (``genae.inversion``, ``QMM_INVERSION`` settings) on the method's learned manifolds: each
    source image's manifold is the best fit of its untransformed version (the middle strength),
    and all 11 strengths of that image are inverted on that one manifold (so the codes measure
    motion within a manifold, not jumps between them)."""
    need_images(ctx, "qmm-score")
    if not method.supports("encode") and not method.supports("manifolds"):
        raise Skip(f"qmm-score needs an encoder or generator manifolds; {type(method).__name__} has neither")
    x = to_unit(ctx.dataset(ctx.split).x[:n_images])
    out: dict[str, Any] = {}
    how = "encode"
    for name, fn, strengths in (("slant", image.shear, QMM_SHEAR), ("width", image.hscale, QMM_WIDTH)):
        xs = [quantize(fn(x, float(s))) for s in strengths]
        if method.supports("encode"):
            with torch.no_grad():
                codes = [ctx.encode(method, xt) for xt in xs]
        else:
            codes, how = _inverted_codes(method, ctx, xs, len(xs) // 2), "inversion"
        r = disentangle.transform_score(np.stack(codes, axis=1))
        out[name] = r["score"]
    extra = ({"codes": "inversion", "inversion": dict(QMM_INVERSION),
              "manifold": "best fit of the untransformed image"} if how == "inversion" else {})
    return {**out, "value": out["slant"], **extra, "n_images": len(x), "strengths": len(QMM_SHEAR),
            "shear_range": [float(QMM_SHEAR[0]), float(QMM_SHEAR[-1])],
            "width_range": [float(QMM_WIDTH[0]), float(QMM_WIDTH[-1])], "split": ctx.split}


def _inverted_codes(method, ctx: EvalContext, xs: list[torch.Tensor], identity: int) -> list[np.ndarray]:
    """Codes ``(N, dim)`` per strength by encoding with optimisation (see ``qmm_score``)."""
    from ..inversion import invert, invert_multi

    man = method.manifolds()
    gens = [man.generator(i) for i in range(man.count)]
    bs, kw = ctx.batch_size, QMM_INVERSION
    index = torch.cat([invert_multi(gens, ctx.to_method(xs[identity][i:i + bs], method), man.dim, **kw).index.cpu()
                       if man.count > 1 else torch.zeros(len(xs[identity][i:i + bs]), dtype=torch.long)
                       for i in range(0, len(xs[identity]), bs)])
    codes = []
    for xt in xs:
        parts = []
        for i in range(0, len(xt), bs):
            xb = ctx.to_method(xt[i:i + bs], method)
            idx = index[i:i + bs].to(xb.device).repeat(kw["restarts"])   # invert stacks restarts × batch
            parts.append(invert(lambda z, idx=idx: man.render(z, idx), xb, man.dim, **kw).z.double().cpu())
        codes.append(torch.cat(parts).numpy())
    return codes
