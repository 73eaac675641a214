"""Latent-code statistics: MIG, normalised absolute covariance, the QMM transform score, and
KL-active units.

Pure functions on codes ``z: (N, D)`` (rows = samples) in float64 NumPy.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..objectives.information import gaussian_informativeness  # IMAE's Proposition 1, re-exported
from .frechet import as_float64

__all__ = [
    "discretize", "discrete_mutual_info", "mig", "normalized_absolute_covariance",
    "transform_score", "kl_active_dims", "gaussian_informativeness", "aggregate_log_marginals",
    "total_correlation_estimate", "mig_sampled", "mig_sampled_pairs", "mig_gaps",
]


def discretize(v: Any, n_bins: int = 20, max_levels: int | None = None) -> np.ndarray:
    """Column-wise discretisation ``(N, D)`` -> integer codes ``(N, D)``.

    A column with at most ``max_levels`` distinct values keeps them as its levels (ground-truth
    factors on a grid); otherwise it is cut into ``n_bins`` equal-width bins between its min and
    max (the histogram discretisation of Locatello et al. 2019 for MIG with 20 bins).
    """
    v = as_float64(v)
    if v.ndim == 1:
        v = v[:, None]
    out = np.empty(v.shape, dtype=np.int64)
    for j in range(v.shape[1]):
        col = v[:, j]
        levels, inv = np.unique(col, return_inverse=True)
        if max_levels is not None and levels.size <= max_levels:
            out[:, j] = inv
            continue
        lo, hi = col.min(), col.max()
        if hi == lo:
            out[:, j] = 0
            continue
        edges = np.linspace(lo, hi, n_bins + 1)[1:-1]
        out[:, j] = np.digitize(col, edges)
    return out


def _entropy(a: np.ndarray) -> float:
    p = np.bincount(a) / a.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) between two integer label vectors of length N."""
    ai, bi = np.unique(a, return_inverse=True)[1], np.unique(b, return_inverse=True)[1]
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    p = table / a.size
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float(max((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum(), 0.0))


def mig(codes: Any, factors: Any, n_bins: int = 20, factor_levels: int = 64
        ) -> dict[str, Any]:
    """Mutual Information Gap (Chen et al. 2018, β-TCVAE), histogram estimator.

    codes: ``(N, D)`` latent codes (sampled from q(z|x) as in Chen et al., or means);
    factors: ``(N, F)`` ground-truth factors (pass only the chosen ones). Codes are cut into
    ``n_bins`` = 20 equal-width bins per dimension; a factor with ≤ ``factor_levels`` distinct
    values is used as is, otherwise binned the same way. For factor k with the two largest
    I(z_j; v_k) = I₁ ≥ I₂: gap_k = (I₁ − I₂) / H(v_k); MIG = mean over factors with H > 0.
    Returns ``{"mig", "per_factor" (F,), "mi" (D, F)}``.
    """
    c = discretize(codes, n_bins)
    v = discretize(factors, n_bins, max_levels=factor_levels)
    d, f = c.shape[1], v.shape[1]
    mi = np.array([[discrete_mutual_info(c[:, j], v[:, k]) for k in range(f)] for j in range(d)])
    gaps = np.full(f, np.nan)
    for k in range(f):
        h = _entropy(v[:, k])
        if h <= 0:
            continue
        top = np.sort(mi[:, k])[::-1]
        second = top[1] if d > 1 else 0.0
        gaps[k] = (top[0] - second) / h
    return {"mig": float(np.nanmean(gaps)) if np.isfinite(gaps).any() else float("nan"),
            "per_factor": gaps, "mi": mi}


def normalized_absolute_covariance(z: Any, var_tol: float = 1e-12) -> float:
    """Mean off-diagonal |cov_ij| / sqrt(cov_ii cov_jj) of codes ``(N, D)`` (MaskAAE's NAC).

    0 for uncorrelated dimensions, 1 for perfectly (anti-)correlated ones. Dimensions whose
    variance is ≤ ``var_tol`` × the largest variance are left out (their correlation is 0/0);
    pass only active dimensions. Returns NaN with fewer than two dimensions left.
    """
    z = as_float64(z)
    cov = np.cov(z, rowvar=False)
    cov = np.atleast_2d(cov)
    var = np.diag(cov)
    keep = var > var_tol * max(var.max(initial=0.0), 1e-300)
    if keep.sum() < 2:
        return float("nan")
    cov = cov[np.ix_(keep, keep)]
    sd = np.sqrt(np.diag(cov))
    corr = np.abs(cov) / np.outer(sd, sd)
    m = corr.shape[0]
    return float((corr.sum() - np.trace(corr)) / (m * (m - 1)))


def transform_score(codes: Any) -> dict[str, float]:
    """QMM disentanglement score for one transform (Deep Quotient Manifold Modeling, Sec. 5).

    codes: ``(N_images, S_strengths, D)``: codes of each image under S strengths of one smooth
    transform. Each image's mean code is subtracted (leaving only the transform-induced motion),
    then the covariance over all N·S codes is eigen-decomposed; score = λ1 / λ2 (large when the
    transform moves the code along a single direction).
    """
    c = as_float64(codes)
    if c.ndim != 3:
        raise ValueError(f"codes must be (images, strengths, dims), got {c.shape}")
    c = (c - c.mean(axis=1, keepdims=True)).reshape(-1, c.shape[2])
    w = np.sort(np.linalg.eigvalsh(np.atleast_2d(np.cov(c, rowvar=False))))[::-1]
    if w.size < 2:
        return {"score": float("inf"), "lambda1": float(w[0]), "lambda2": 0.0}
    return {"score": float(w[0] / w[1]) if w[1] > 0 else float("inf"),
            "lambda1": float(w[0]), "lambda2": float(w[1])}


def kl_active_dims(mu: Any, logvar: Any, threshold: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """KL-active units of a Gaussian encoder q(z|x) = N(mu, exp(logvar)) against N(0, I).

    mu, logvar: ``(N, D)``. Per-dimension KL = ½(mu² + exp(logvar) − logvar − 1), averaged over
    the data; a unit is active if that average exceeds ``threshold`` nats.
    Returns ``(active mask (D,), mean KL per dim (D,))``.
    """
    mu, lv = as_float64(mu), as_float64(logvar)
    kl = 0.5 * (mu ** 2 + np.exp(lv) - lv - 1.0)
    mean_kl = kl.mean(axis=0)
    return mean_kl > threshold, mean_kl


# --- IMAE: informativeness, total correlation and the β-TCVAE MIG estimator ---------------------------

def _log_normal(z: np.ndarray, mu: np.ndarray, lv: np.ndarray) -> np.ndarray:
    """``(n, m, D)``: log N(z_i | mu_j, exp(lv_j)) per dimension, for z ``(n, D)`` and mu, lv ``(m, D)``."""
    return -0.5 * ((z[:, None] - mu[None]) ** 2 * np.exp(-lv[None]) + lv[None] + np.log(2 * np.pi))


def _logmeanexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).mean(axis=axis, keepdims=True))).squeeze(axis)


def aggregate_log_marginals(z: Any, mu: Any, logvar: Any, chunk: int = 256,
                            tick: Callable[[int], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Log-densities of the empirical aggregate posterior q(z) = (1/N) Σ_n q(z|x_n) of N encoded
    examples, at the points ``z`` ``(M, D)``: ``(log q(z_i) (M,), log q_k(z_ik) (M, D))``.
    mu, logvar: ``(N, D)``. Exact for the N examples given (no minibatch weighting); float64,
    O(M·N·D) in chunks of ``chunk`` points. ``tick``: called after each chunk with the (point,
    example) pairs it evaluated (M·N in all), e.g. a progress bar's ``update``."""
    z, mu, lv = as_float64(z), as_float64(mu), as_float64(logvar)
    joint, marg = np.empty(len(z)), np.empty(z.shape)
    for s in range(0, len(z), chunk):
        mat = _log_normal(z[s:s + chunk], mu, lv)                 # (c, N, D)
        joint[s:s + chunk] = _logmeanexp(mat.sum(2), 1)
        marg[s:s + chunk] = _logmeanexp(mat, 1)
        if tick is not None:
            tick(len(mat) * len(mu))
    return joint, marg


def total_correlation_estimate(z: Any, mu: Any, logvar: Any) -> float:
    """TC(z) = KL(q(z) ‖ Π_k q_k(z_k)) of the empirical aggregate posterior of N examples, estimated
    at one sample z_i ~ q(z|x_i) per example: mean_i [log q(z_i) − Σ_k log q_k(z_ik)] (nats).
    z, mu, logvar: ``(N, D)``."""
    joint, marg = aggregate_log_marginals(z, mu, logvar)
    return float((joint - marg.sum(1)).mean())


def _entropy_probs(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mig_sampled(z: Any, mu: Any, logvar: Any, factors: Any, probs: Any = None,
                tick: Callable[[int], object] | None = None) -> dict[str, Any]:
    """MIG with the estimator of Chen et al. 2018 (β-TCVAE, section 5 and their reference code):
    I(z_j; v_k) = H(z_j) − H(z_j | v_k), where the entropies are Monte-Carlo estimates at one sample
    z_i ~ q(z|x_i) per example under the aggregate posterior of the examples (all N for H(z_j);
    those with v_k = v for H(z_j | v_k = v)), not histograms. H(v_k) is the empirical entropy of the
    factor (log #values on a full grid, as Chen et al.).

    z, mu, logvar: ``(N, D)`` continuous codes (samples) and q(z|x); factors: ``(N, F)`` discrete
    ground-truth factors. probs: optional ``(N, K)`` p(y|x) of a categorical code, added as one more
    latent (the IMAE appendix-E variant) with I(y; v_k) = H(mean p) − Σ_v p(v)·H(mean_{v_k = v} p).
    Returns ``{"mig", "per_factor" (F,), "mi" (D [+1], F), "h_v" (F,)}`` in nats / normalised gaps;
    :func:`mig_gaps` re-scores any subset of the rows and factors without re-estimating.
    ``tick``: advanced by the pairs each density evaluation covers (``mig_sampled_pairs`` in all).
    """
    z, mu, lv, v = as_float64(z), as_float64(mu), as_float64(logvar), np.asarray(factors)
    if v.ndim == 1:
        v = v[:, None]
    n, d = z.shape
    _, marg = aggregate_log_marginals(z, mu, lv, tick=tick)
    h_z = -marg.mean(0)                                            # (D,)
    mi = np.zeros((d + (probs is not None), v.shape[1]))
    h_v = np.zeros(v.shape[1])
    p = as_float64(probs) if probs is not None else None
    for k in range(v.shape[1]):
        values, inv = np.unique(v[:, k], return_inverse=True)
        pv = np.bincount(inv) / n
        h_cond, h_y_cond = np.zeros(d), 0.0
        for i in range(len(values)):
            sel = inv == i
            _, m = aggregate_log_marginals(z[sel], mu[sel], lv[sel], tick=tick)
            h_cond += pv[i] * -m.mean(0)
            if p is not None:
                h_y_cond += pv[i] * _entropy_probs(p[sel].mean(0))
        mi[:d, k] = np.maximum(h_z - h_cond, 0.0)
        if p is not None:
            mi[d, k] = max(_entropy_probs(p.mean(0)) - h_y_cond, 0.0)
        h_v[k] = _entropy_probs(pv)
    gaps = mig_gaps(mi, h_v)
    return {"mig": float(np.nanmean(gaps)) if np.isfinite(gaps).any() else float("nan"),
            "per_factor": gaps, "mi": mi, "h_v": h_v}


def mig_sampled_pairs(factors: Any) -> int:
    """The work of ``mig_sampled`` in (point, example) density pairs, for a progress bar's total:
    N² for H(z), then Σ_v N_v² per factor for H(z | v_k = v)."""
    v = np.asarray(factors)
    v = v[:, None] if v.ndim == 1 else v
    counts = [np.unique(v[:, k], return_counts=True)[1].astype(np.int64) for k in range(v.shape[1])]
    return int(len(v) ** 2 + sum(int((c * c).sum()) for c in counts))


def mig_gaps(mi: np.ndarray, h_v: np.ndarray) -> np.ndarray:
    """Per factor k, (I₁ − I₂) / H(v_k) from a ``(latents, F)`` mutual-information matrix and the
    factors' entropies ``(F,)``; NaN where H(v_k) = 0."""
    gaps = np.full(mi.shape[1], np.nan)
    for k in range(mi.shape[1]):
        if h_v[k] > 0:
            top = np.sort(mi[:, k])[::-1]
            gaps[k] = (top[0] - (top[1] if len(top) > 1 else 0.0)) / h_v[k]
    return gaps
