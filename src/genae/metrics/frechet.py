"""Generative-quality statistics on feature vectors: Fréchet distance, KID, IS, precision/recall.

All functions are pure: "features -> statistics -> number". Inputs are NumPy arrays or torch
tensors with one sample per row; computation is float64 NumPy (precision/recall uses float64 torch
for chunked pairwise distances). Which network produced the features (Inception, the domain
classifier, raw vectors) is the caller's business and is reported alongside every number.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "as_float64", "feature_statistics", "frechet_distance", "kid", "inception_score",
    "precision_recall",
]


def as_float64(x: Any) -> np.ndarray:
    """Array or tensor -> float64 NumPy array (detached, on the host)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` features -> mean ``(D,)`` and covariance ``(D, D)`` (float64, ``ddof=1``).

    ``ddof=1`` matches the reference FID implementations (``np.cov``).
    """
    f = as_float64(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {f.shape}")
    mu = f.mean(axis=0)
    fc = f - mu
    sigma = fc.T @ fc / (f.shape[0] - 1)
    return mu, sigma


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root by eigen-decomposition (negative round-off eigenvalues -> 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> tuple[float, float]:
    """tr sqrt(S1 S2) and the most negative eigenvalue seen (relative), for diagnostics.

    S1 S2 is not symmetric, but it is similar to M = S1^½ S2 S1^½, which is symmetric PSD, so
    tr sqrt(S1 S2) = Σ sqrt(eig(M)). Working with M avoids the complex residue that a general
    ``sqrtm(S1 @ S2)`` produces on near-singular covariances (scipy's route in pytorch-fid).
    """
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    m = (m + m.T) / 2
    w = np.linalg.eigvalsh(m)
    scale = max(float(np.abs(w).max(initial=0.0)), 1e-300)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum()), float(w.min(initial=0.0)) / scale


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, FID).

    d² = ‖mu1 − mu2‖² + tr(S1) + tr(S2) − 2 tr sqrt(S1 S2), in float64.

    mu1, mu2: ``(D,)``; sigma1, sigma2: ``(D, D)`` symmetric PSD. The matrix square root is taken as
    the symmetric square root of S1^½ S2 S1^½ (eigen-decompositions only, so no complex parts
    arise). If that matrix shows clearly negative eigenvalues (ill-conditioning beyond round-off)
    the computation is retried with ``eps·I`` added to both covariances, as pytorch-fid does for
    singular products. The result is clipped at 0 (it is a squared distance).
    """
    mu1, mu2 = as_float64(mu1).reshape(-1), as_float64(mu2).reshape(-1)
    s1, s2 = np.atleast_2d(as_float64(sigma1)), np.atleast_2d(as_float64(sigma2))
    if not (mu1.shape == mu2.shape and s1.shape == s2.shape == (mu1.size, mu1.size)):
        raise ValueError(f"shape mismatch: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    diff = mu1 - mu2
    tr_covmean, min_rel = _trace_sqrt_product(s1, s2)
    if not np.isfinite(tr_covmean) or min_rel < -1e-6:
        offset = eps * np.eye(mu1.size)
        tr_covmean, _ = _trace_sqrt_product(s1 + offset, s2 + offset)
    d2 = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(d2, 0.0)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Cubic polynomial kernel of Bińkowski et al. 2018 (KID): k(x, y) = (xᵀy / d + 1)³.
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² (Gretton et al. 2012, eq. 3): diagonal terms of k(x,x), k(y,y) left out."""
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(real: Any, fake: Any, n_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): ``(mean, std)`` of unbiased MMD².

    real: ``(N, D)``, fake: ``(M, D)`` features. For each of ``n_subsets`` draws, ``m =
    min(subset_size, N, M)`` rows of each set are drawn without replacement and the unbiased MMD²
    with the cubic polynomial kernel is computed; the mean over draws is returned with its
    standard deviation (``ddof=1``). Unbiased: its expectation is 0 for identical distributions,
    so single values can be negative.
    """
    r, f = as_float64(real), as_float64(fake)
    m = min(subset_size, r.shape[0], f.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    vals = np.array([
        _mmd2_unbiased(r[rng.choice(r.shape[0], m, replace=False)],
                       f[rng.choice(f.shape[0], m, replace=False)])
        for _ in range(n_subsets)
    ])
    return float(vals.mean()), float(vals.std(ddof=1)) if n_subsets > 1 else 0.0


def inception_score(probs: Any, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): ``(mean, std)`` over ``splits`` equal chunks.

    probs: ``(N, K)`` class probabilities p(y|x) of a classifier (rows sum to 1). Per chunk,
    IS = exp(mean_x KL(p(y|x) ‖ p(y))) with p(y) the chunk's mean prediction; 0·log 0 = 0.
    Ranges from 1 (constant predictions) to K (confident, uniform over classes). Chunks are taken
    in order, as in the reference implementation, so shuffle beforehand if order matters.
    """
    p = as_float64(probs)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K), got {p.shape}")
    scores = []
    for chunk in np.array_split(p, max(1, min(splits, p.shape[0]))):
        py = chunk.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(py)), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    s = np.array(scores)
    return float(s.mean()), float(s.std()) if s.size > 1 else 0.0


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row (self excluded)."""
    out = []
    for i in range(0, x.shape[0], chunk):
        d = torch.cdist(x[i:i + chunk], x)
        # k + 1 smallest: the row itself is at distance 0.
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def _covered(query: torch.Tensor, ref: torch.Tensor, radius: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each query row: is it inside some ball B(ref_j, radius_j)?"""
    out = []
    for i in range(0, query.shape[0], chunk):
        d = torch.cdist(query[i:i + chunk], ref)
        out.append((d <= radius[None, :]).any(dim=1))
    return torch.cat(out)


def precision_recall(real: Any, fake: Any, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    real: ``(N, D)``, fake: ``(M, D)``. The real manifold is the union of balls around each real
    feature with radius its distance to its k-th nearest real neighbour; precision = fraction of
    fake features inside it. Recall swaps the roles. Euclidean distances in float64, k = 3 as in
    the paper.
    """
    r = torch.as_tensor(as_float64(real))
    f = torch.as_tensor(as_float64(fake))
    if min(r.shape[0], f.shape[0]) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    chunk = max(1, min(chunk, (1 << 24) // max(r.shape[0], f.shape[0])))  # ≤ 128 MiB per block
    precision = _covered(f, r, _kth_nn_radius(r, k, chunk), chunk).double().mean().item()
    recall = _covered(r, f, _kth_nn_radius(f, k, chunk), chunk).double().mean().item()
    return float(precision), float(recall)
