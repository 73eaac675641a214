"""Subspace structure of features: nearest-subspace classification, class spectra, principal
angles, feature rank and the rate-reduction terms.

Pure functions on float64 NumPy; inputs are arrays or tensors with one sample per row
(``z: (N, D)``) and integer labels ``y: (N,)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .frechet import as_float64

__all__ = [
    "nearest_subspace_accuracy", "class_bases", "class_singular_values", "principal_angles",
    "feature_rank", "effective_rank", "coding_rate", "rate_reduction",
]


def _labels(y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    return np.asarray(y).astype(np.int64).reshape(-1)


def class_bases(z: Any, y: Any, n_components: int = 10, centered: bool = True
                ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-class subspace: label -> (origin ``(D,)``, orthonormal basis ``(D, r)``).

    centred: origin = class mean, basis = top-r right singular vectors of the centred rows (PCA).
    uncentred: origin = 0, basis = top-r right singular vectors of the raw rows (plain SVD).
    r = min(n_components, n_j, D).
    """
    z, y = as_float64(z), _labels(y)
    out = {}
    for c in np.unique(y):
        zc = z[y == c]
        origin = zc.mean(axis=0) if centered else np.zeros(z.shape[1])
        _, _, vt = np.linalg.svd(zc - origin, full_matrices=False)
        r = min(n_components, vt.shape[0])
        out[int(c)] = (origin, vt[:r].T)
    return out


def nearest_subspace_accuracy(z_train: Any, y_train: Any, z_test: Any, y_test: Any,
                              n_components: int = 10, centered: bool = True) -> float:
    """Nearest-subspace classifier accuracy (CTRL / MCR² evaluation protocol).

    Fits one subspace per training class (see ``class_bases``: centred = PCA, uncentred = SVD, as
    the two variants of the reference code), then assigns each test point to the class whose
    subspace leaves the smallest residual ‖(I − U Uᵀ)(z − origin)‖. Returns the fraction of test
    points assigned their true label.

    z_train ``(N, D)``, y_train ``(N,)``, z_test ``(M, D)``, y_test ``(M,)``.
    """
    bases = class_bases(z_train, y_train, n_components, centered)
    zt, yt = as_float64(z_test), _labels(y_test)
    classes = np.array(sorted(bases))
    resid = np.empty((zt.shape[0], classes.size))
    for j, c in enumerate(classes):
        origin, u = bases[c]
        d = zt - origin
        resid[:, j] = np.linalg.norm(d - (d @ u) @ u.T, axis=1)
    pred = classes[resid.argmin(axis=1)]
    return float((pred == yt).mean())


def class_singular_values(z: Any, y: Any) -> dict[int, np.ndarray]:
    """label -> singular values (descending, ``(min(n_j, D),)``) of that class's raw rows.

    The per-class spectra that CTRL plots: a class living on a low-dimensional subspace has a
    spectrum that drops sharply after its dimension.
    """
    z, y = as_float64(z), _labels(y)
    return {int(c): np.linalg.svd(z[y == c], compute_uv=False) for c in np.unique(y)}


def principal_angles(z: Any, y: Any, n_components: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of principal angles between the (uncentred) class subspaces.

    Returns ``(classes (K,), cosines (K, K, r))``: ``cosines[a, b]`` = singular values of
    U_aᵀ U_b in descending order (1 = a shared direction, 0 = orthogonal). Pairs whose bases are
    smaller than r are padded with NaN.
    """
    bases = class_bases(z, y, n_components, centered=False)
    classes = np.array(sorted(bases))
    r = max(b[1].shape[1] for b in bases.values())
    cos = np.full((classes.size, classes.size, r), np.nan)
    for a, ca in enumerate(classes):
        for b, cb in enumerate(classes):
            s = np.linalg.svd(bases[ca][1].T @ bases[cb][1], compute_uv=False)
            cos[a, b, :s.size] = np.clip(s, 0.0, 1.0)
    return classes, cos


def feature_rank(z: Any, rtol: float = 1e-3, centered: bool = True) -> int:
    """Numerical rank of the feature matrix ``(N, D)``: #singular values > rtol · σ_max.

    Centred by default (the rank of the feature covariance, i.e. the number of directions the
    features actually vary along). rtol = 1e-3 on singular values (1e-6 on variances) is far
    above float32 round-off yet counts any direction carrying a visible share of variance.
    """
    z = as_float64(z)
    if centered:
        z = z - z.mean(axis=0)
    s = np.linalg.svd(z, compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return 0
    return int((s > rtol * s[0]).sum())


def effective_rank(z: Any, centered: bool = True) -> float:
    """Effective rank (Roy & Vetterli 2007): exp of the entropy of the normalised singular values.

    A continuous companion of ``feature_rank``: equals k for k equal singular values.
    """
    z = as_float64(z)
    if centered:
        z = z - z.mean(axis=0)
    s = np.linalg.svd(z, compute_uv=False)
    if s.sum() == 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def coding_rate(z: Any, eps2: float = 0.5) -> float:
    """R(Z) = ½ logdet(I + d/(n ε²) ZᵀZ) for ``z: (n, d)`` (Yu et al. 2020; CTRL eq. 2).

    Uses the smaller Gram matrix (logdet(I_d + c ZᵀZ) = logdet(I_n + c ZZᵀ)); float64 Cholesky.
    ``eps2`` is ε² itself (0.5 as passed by the reference code). An empty set has rate 0.
    """
    z = as_float64(z)
    n, d = z.shape
    if n == 0:
        return 0.0
    gram = z.T @ z if d <= n else z @ z.T
    a = np.eye(gram.shape[0]) + (d / (n * eps2)) * gram
    return float(np.log(np.diag(np.linalg.cholesky(a))).sum())  # ½ logdet = Σ log diag(L)


def rate_reduction(z: Any, y: Any, eps2: float = 0.5, normalize: bool = True) -> dict[str, float]:
    """Rate-reduction terms of labelled features: ``{"R", "Rc", "delta_R"}``.

    R = R(Z); Rc = Σ_j (n_j/n) R(Z_j), each R(Z_j) with its own n_j; ΔR = R − Rc (MCR², Yu et al.
    2020). ``normalize`` puts rows on the unit sphere first, as the objective assumes.
    (A local float64 copy for evaluation; the training objective lives in objectives/.)
    """
    z, y = as_float64(z), _labels(y)
    if normalize:
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    n = z.shape[0]
    r = coding_rate(z, eps2)
    rc = sum((np.sum(y == c) / n) * coding_rate(z[y == c], eps2) for c in np.unique(y))
    return {"R": r, "Rc": float(rc), "delta_R": float(r - rc)}
