"""Label-agreement metrics on features: clustering accuracy, NMI, k-means, k-NN and a linear probe.

Pure functions; features are ``(N, D)`` arrays or tensors (rows = samples), labels ``(N,)`` ints.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .frechet import as_float64
from .subspace import _labels

__all__ = ["clustering_accuracy", "nmi", "kmeans", "knn_accuracy", "linear_probe_accuracy"]


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), dtype=np.int64)
    np.add.at(table, (ai, bi), 1)
    return table


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    """Unsupervised accuracy: best one-to-one matching of predicted clusters to labels.

    ACC = max over injective maps m of (1/N) Σ 1[y_true = m(y_pred)], solved exactly with the
    Hungarian algorithm on the contingency table (``scipy.optimize.linear_sum_assignment``). The
    number of clusters may differ from the number of classes; unmatched clusters count as wrong.
    Invariant to any relabelling of ``y_pred``.
    """
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in length")
    table = _contingency(p, t)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / t.size)


def nmi(y_true: Any, y_pred: Any) -> float:
    """Normalised mutual information, I(T; P) / ((H(T) + H(P)) / 2) (arithmetic normalisation,
    scikit-learn's default). 1 when both labelings are constant (identical partitions)."""
    t, p = _labels(y_true), _labels(y_pred)
    table = _contingency(t, p).astype(np.float64)
    pxy = table / table.sum()
    px, py = pxy.sum(axis=1), pxy.sum(axis=0)
    nz = pxy > 0
    mi = float((pxy[nz] * np.log(pxy[nz] / np.outer(px, py)[nz])).sum())
    ht = float(-(px * np.log(px)).sum())
    hp = float(-(py * np.log(py)).sum())
    if ht + hp == 0:
        return 1.0
    return float(max(mi, 0.0) / ((ht + hp) / 2))


def kmeans(z: Any, k: int, n_init: int = 10, max_iter: int = 300, seed: int = 0,
           tol: float = 1e-8) -> np.ndarray:
    """k-means (Lloyd) with k-means++ seeding and ``n_init`` restarts -> labels ``(N,)``.

    Deterministic for a given ``seed``; the restart with the lowest inertia wins. Float64.
    """
    x = as_float64(z)
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sq = (x * x).sum(axis=1)
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        # k-means++ (Arthur & Vassilvitskii 2007): each new centre drawn ∝ D(x)².
        centres = [x[rng.integers(n)]]
        d2 = ((x - centres[0]) ** 2).sum(axis=1)
        for _ in range(1, k):
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            centres.append(x[rng.choice(n, p=p)])
            d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(axis=1))
        c = np.array(centres)
        prev = np.inf
        for _ in range(max_iter):
            dist = sq[:, None] - 2 * x @ c.T + (c * c).sum(axis=1)[None]
            lab = dist.argmin(axis=1)
            inertia = float(dist[np.arange(n), lab].sum())
            for j in range(k):
                members = x[lab == j]
                if len(members):
                    c[j] = members.mean(axis=0)
                else:  # re-seed an empty cluster at the worst-fitted point
                    c[j] = x[dist[np.arange(n), lab].argmax()]
            if prev - inertia <= tol * max(abs(prev), 1.0):
                break
            prev = inertia
        if inertia < best_inertia:
            best, best_inertia = lab.copy(), inertia
    return best


def knn_accuracy(z_train: Any, y_train: Any, z_test: Any, y_test: Any, k: int = 5,
                 metric: str = "euclidean", chunk: int = 1024) -> float:
    """k-nearest-neighbour classifier accuracy (majority vote of the k nearest training points).

    metric: "euclidean" or "cosine" (rows L2-normalised, as in the MCR²/CTRL k-NN evaluation).
    Ties between classes go to the tied class holding the nearest neighbour.
    """
    tr = torch.as_tensor(as_float64(z_train))
    te = torch.as_tensor(as_float64(z_test))
    ytr = torch.as_tensor(_labels(y_train))
    yte = _labels(y_test)
    if metric == "cosine":
        tr = torch.nn.functional.normalize(tr, dim=1)
        te = torch.nn.functional.normalize(te, dim=1)
    elif metric != "euclidean":
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    k = min(k, tr.shape[0])
    n_cls = int(ytr.max()) + 1
    chunk = max(1, min(chunk, (1 << 24) // tr.shape[0]))  # ≤ 128 MiB of float64 distances
    preds = []
    for i in range(0, te.shape[0], chunk):
        idx = torch.cdist(te[i:i + chunk], tr).topk(k, dim=1, largest=False).indices  # sorted
        nb = ytr[idx]                                                # (B, k), nearest first
        votes = torch.zeros(nb.shape[0], n_cls, dtype=torch.float64)
        votes.scatter_add_(1, nb, torch.ones_like(nb, dtype=torch.float64))
        # Tie-break: a tiny bonus decreasing with the rank of a class's nearest member.
        rank_bonus = torch.zeros_like(votes)
        for j in reversed(range(k)):
            rank_bonus[torch.arange(nb.shape[0]), nb[:, j]] = (k - j) / (k + 1)
        preds.append((votes + rank_bonus / k).argmax(dim=1))
    return float((torch.cat(preds).numpy() == yte).mean())


def linear_probe_accuracy(z_train: Any, y_train: Any, z_test: Any, y_test: Any,
                          weight_decay: float = 1e-4, max_iter: int = 500) -> float:
    """Test accuracy of a multinomial logistic-regression probe on frozen features.

    Deterministic: features standardised with the training mean/std; weights start at zero and
    are fitted full-batch by L-BFGS (strong-Wolfe line search) in float64 on
    mean cross-entropy + ``weight_decay``/2 · ‖W‖² (bias not penalised).
    """
    tr, te = as_float64(z_train), as_float64(z_test)
    ytr, yte = _labels(y_train), _labels(y_test)
    mu, sd = tr.mean(axis=0), tr.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    xtr = torch.as_tensor((tr - mu) / sd)
    xte = torch.as_tensor((te - mu) / sd)
    t = torch.as_tensor(ytr)
    n_cls = int(max(ytr.max(), yte.max())) + 1
    w = torch.zeros(xtr.shape[1], n_cls, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_cls, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, t) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = (xte @ w + b).argmax(dim=1).numpy()
    return float((pred == yte).mean())
