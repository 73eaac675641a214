"""Supervised disentanglement scores: DCI, SAP, the FactorVAE score, modularity and explicitness.

Pure functions in float64 NumPy on codes ``(N, D)`` (rows = examples) and ground-truth factors
``(N, F)`` of integer classes (any integer labels; each column is relabelled 0..K-1), with the
small learners they need written here, so genae needs no scikit-learn:

- ``lasso``: coordinate descent on standardized inputs (Eastwood & Williams' importance);
- ``svm_1d``: a one-vs-rest squared-hinge linear SVM on one feature, liblinear's objective
  (disentanglement_lib's SAP classifier);
- ``logistic_regression``: L2-penalised binary logistic regression by Newton's method
  (Ridgeway & Mozer's explicitness, one per factor value);
- ``roc_auc``: ROC AUC from average ranks (the Mann–Whitney statistic).

The fitted scores split the N examples once: ``train_test_indices`` (a permutation seeded by
``seed``, the first ``train_fraction`` = 80 % for fitting, the rest for scoring), as
disentanglement_lib fits on one sample of codes and scores on another.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .disentangle import discrete_mutual_info, discretize
from .frechet import as_float64

__all__ = ["train_test_indices", "lasso", "svm_1d", "logistic_regression", "roc_auc", "dci",
           "dci_from_importance", "sap", "factorvae_score", "modularity", "explicitness",
           "modularity_explicitness"]

TRAIN_FRACTION = 0.8


# --- shared helpers ------------------------------------------------------------------------------

def train_test_indices(n: int, train_fraction: float = TRAIN_FRACTION, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of N examples: a permutation seeded by ``seed``, its first
    ceil(train_fraction·N) rows to fit, the rest to score. A permutation, not the stored order,
    because a split may be stored sorted (by class, by grid cell)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = int(np.ceil(n * train_fraction))
    if not 0 < k < n:
        raise ValueError(f"train_fraction {train_fraction} leaves an empty train or test part of {n} examples")
    return perm[:k], perm[k:]


def _classes(factors: Any) -> np.ndarray:
    """``(N, F)`` integer labels -> ``(N, F)`` int64 classes 0..K_k-1 per column."""
    v = np.asarray(factors)
    if v.ndim == 1:
        v = v[:, None]
    out = np.empty(v.shape, dtype=np.int64)
    for k in range(v.shape[1]):
        out[:, k] = np.unique(v[:, k], return_inverse=True)[1].reshape(-1)
    return out


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Zero mean, unit variance (population std) with the train part's statistics; a constant
    column becomes 0 everywhere (it carries nothing, and 0/0 would poison the fits)."""
    mu, sd = train.mean(0), train.std(0)
    ok = sd > 0
    scale = np.where(ok, sd, 1.0)
    return [np.where(ok, (a - mu) / scale, 0.0) for a in (train, *others)]


def _normalized_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of the distributions along ``axis``, in units of log(size along axis) (so in [0, 1])."""
    n = p.shape[axis]
    if n < 2:
        return np.zeros(np.delete(p.shape, axis))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(p), 0.0)
    return -t.sum(axis) / np.log(n)


# --- learners ------------------------------------------------------------------------------------

def lasso(x: np.ndarray, y: np.ndarray, alpha: float, tol: float = 1e-11, max_sweeps: int = 20000
          ) -> np.ndarray:
    """Lasso weights ``(D,)`` minimising (1/2N)·‖y − Xw‖² + α‖w‖₁ for centred ``x (N, D)`` and
    ``y (N,)`` (no intercept: both are centred), by cyclic coordinate descent on the Gram matrix
    (N ≫ D here, so each sweep is O(D²)). Stops when no weight moves by more than ``tol``."""
    x, y = as_float64(x), as_float64(y)
    n, d = x.shape
    gram, xy = x.T @ x / n, x.T @ y / n
    diag = np.diag(gram).copy()
    w = np.zeros(d)
    for _ in range(max_sweeps):
        biggest = 0.0
        for j in range(d):
            if diag[j] <= 0:
                continue
            # partial residual correlation of coordinate j, then soft thresholding
            rho = xy[j] - gram[j] @ w + diag[j] * w[j]
            new = np.sign(rho) * max(abs(rho) - alpha, 0.0) / diag[j]
            biggest = max(biggest, abs(new - w[j]))
            w[j] = new
        if biggest <= tol:
            break
    return w


def svm_1d(x: np.ndarray, y: np.ndarray, c: float = 0.01, balanced: bool = True,
           tol: float = 1e-10, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A linear SVM on one feature ``x (N,)`` with labels ``y (N,)`` (ints): liblinear's L2-penalised
    squared-hinge problem, which scikit-learn's ``LinearSVC(C=c, class_weight="balanced")`` solves
    (disentanglement_lib's SAP classifier), solved exactly here by Newton's method on the two
    parameters (w, b) of each one-vs-rest problem. As in liblinear the bias is penalised like the
    weight (a constant feature of value 1), and per class k

        min ½(w² + b²) + Σ_i C_i · max(0, 1 − s_i (w x_i + b))²,   s_i = ±1 (class k or not),

    with C_i = c·N/(K·N_k) for the positives and c for the rest (liblinear weights only the positive
    class of each one-vs-rest problem); with two classes one problem, each side weighted by its own
    class. Returns ``(classes (K,), params (K, 2))`` (one row for two classes): predict with
    :func:`svm_1d_predict`."""
    x, labels = as_float64(x).reshape(-1), np.asarray(y).reshape(-1)
    classes, yi = np.unique(labels, return_inverse=True)
    n, k = x.size, classes.size
    counts = np.bincount(yi, minlength=k)
    weight = n / (k * counts) if balanced else np.ones(k)
    if k == 1:
        return classes, np.zeros((1, 2))
    if k == 2:
        s = np.where(yi == 1, 1.0, -1.0)[None]                       # positive: the second class
        cw = (c * weight[yi])[None]
    else:
        s = np.where(yi[None] == np.arange(k)[:, None], 1.0, -1.0)    # (K, N)
        cw = np.where(s > 0, c * weight[:, None], c)
    feat = np.stack([x, np.ones(n)])                                    # (2, N)

    def objective(theta):
        margin = np.maximum(0.0, 1.0 - s * (theta @ feat))
        return 0.5 * (theta ** 2).sum(1) + (cw * margin ** 2).sum(1)

    theta = np.zeros((s.shape[0], 2))
    for _ in range(max_iter):
        slack = 1.0 - s * (theta @ feat)
        act = np.where(slack > 0, cw, 0.0)                              # (P, N): the active set
        grad = theta - 2.0 * (act * slack * s) @ feat.T                 # (P, 2)
        if np.abs(grad).max() <= tol * max(1.0, n * c):
            break
        # generalised Hessian of the piecewise quadratic: I + 2 Σ_active C_i f_i f_iᵀ
        h00 = 1.0 + 2.0 * (act * x ** 2).sum(1)
        h01 = 2.0 * (act * x).sum(1)
        h11 = 1.0 + 2.0 * act.sum(1)
        det = h00 * h11 - h01 ** 2
        step = -np.stack([h11 * grad[:, 0] - h01 * grad[:, 1], h00 * grad[:, 1] - h01 * grad[:, 0]], 1) / det[:, None]
        # backtracking (Armijo) line search per problem: the Newton step of a piecewise quadratic
        # can overshoot where the active set changes
        f0, slope = objective(theta), (grad * step).sum(1)
        t = np.ones(len(theta))
        for _ in range(40):
            bad = objective(theta + t[:, None] * step) > f0 + 1e-4 * t * slope
            if not bad.any():
                break
            t = np.where(bad, t * 0.5, t)
        theta = theta + t[:, None] * step
    return classes, theta


def svm_1d_predict(classes: np.ndarray, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Labels ``(N,)`` of :func:`svm_1d`'s model at ``x (N,)``: the larger decision value
    (one-vs-rest), or the sign of the single decision with two classes."""
    x = as_float64(x).reshape(-1)
    if classes.size == 1:
        return np.full(x.size, classes[0])
    dec = theta[:, :1] * x[None] + theta[:, 1:]
    if classes.size == 2:
        return classes[(dec[0] > 0).astype(int)]
    return classes[dec.argmax(0)]


def logistic_regression(x: np.ndarray, y: np.ndarray, c: float = 1.0, tol: float = 1e-10,
                        max_iter: int = 100) -> np.ndarray:
    """Binary logistic regression ``(D + 1,)`` = (w, b) minimising
    ½‖w‖² + C Σ_i log(1 + exp(−s_i (w·x_i + b))), s_i = ±1 from ``y (N,)`` in {0, 1}
    (scikit-learn's ``LogisticRegression(C=c)`` objective: the intercept is not penalised), by
    Newton's method with a backtracking line search. ``x (N, D)``."""
    x, t = as_float64(x), np.asarray(y, dtype=np.float64).reshape(-1)
    n, d = x.shape
    xa = np.concatenate([x, np.ones((n, 1))], 1)
    pen = np.ones(d + 1)
    pen[-1] = 0.0                                              # the intercept is free

    def objective(theta):
        z = xa @ theta
        # log(1 + exp(−s z)) = logaddexp(0, −s z), with s = 2t − 1
        return 0.5 * (pen * theta ** 2).sum() + c * np.logaddexp(0.0, -(2 * t - 1) * z).sum()

    theta = np.zeros(d + 1)
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * (xa @ theta)))            # sigmoid, overflow-free
        grad = pen * theta + c * xa.T @ (p - t)
        if np.abs(grad).max() <= tol * max(1.0, n * c):
            break
        hess = np.diag(pen) + c * (xa * (p * (1 - p))[:, None]).T @ xa
        hess[-1, -1] += 1e-12                                    # all-one-class data: keep it solvable
        step = -np.linalg.solve(hess, grad)
        f0, slope, s = objective(theta), grad @ step, 1.0
        for _ in range(40):
            if objective(theta + s * step) <= f0 + 1e-4 * s * slope:
                break
            s *= 0.5
        theta = theta + s * step
    return theta


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores (N,)`` for binary ``labels (N,)``: the Mann–Whitney
    statistic (R₊ − n₊(n₊+1)/2) / (n₊ n₋) with R₊ the sum of the positives' ranks, tied scores
    sharing their average rank (ties count ½). NaN when one class is absent."""
    lab = np.asarray(labels).reshape(-1).astype(bool)
    pos, neg = int(lab.sum()), int((~lab).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    _, inv, counts = np.unique(as_float64(scores).reshape(-1), return_inverse=True, return_counts=True)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks = (start + (counts + 1) / 2.0)[inv.reshape(-1)]       # 1-based average ranks
    return float((ranks[lab].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


# --- DCI -----------------------------------------------------------------------------------------

def dci_from_importance(importance: Any) -> dict[str, Any]:
    """Disentanglement and completeness (Eastwood & Williams 2018) of an importance matrix
    ``R (D codes, F factors)`` ≥ 0.

    P_ij = R_ij / Σ_k R_ik; D_i = 1 − H_F(P_i.) (entropy in base F); ρ_i = Σ_k R_ik / Σ R;
    disentanglement = Σ_i ρ_i D_i. P̃_ij = R_ij / Σ_i R_ij; C_j = 1 − H_D(P̃_.j);
    completeness = mean_j C_j (the paper's reference code; disentanglement_lib weights C_j by the
    factor's share of R, the same thing when each column sums to 1 as with boosted trees). A code
    with no importance gets D_i = 0 at weight 0; a factor no code predicts gets C_j = 0.
    Returns ``{"disentanglement", "completeness", "per_code" (D,), "per_factor" (F,),
    "code_weight" (D,)}``."""
    r = np.abs(as_float64(importance))
    total = r.sum()
    rows, cols = r.sum(1, keepdims=True), r.sum(0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_code = np.where(rows > 0, r / rows, 0.0)
        p_factor = np.where(cols > 0, r / cols, 0.0)
    per_code = np.where(rows[:, 0] > 0, 1.0 - _normalized_entropy(p_code, 1), 0.0)
    per_factor = np.where(cols[0] > 0, 1.0 - _normalized_entropy(p_factor, 0), 0.0)
    weight = rows[:, 0] / total if total > 0 else np.zeros(r.shape[0])
    return {"disentanglement": float((weight * per_code).sum()), "completeness": float(per_factor.mean()),
            "per_code": per_code, "per_factor": per_factor, "code_weight": weight}


def dci(codes: Any, factors: Any, importance: str = "lasso", alpha: float = 0.02,
        train_fraction: float = TRAIN_FRACTION, seed: int = 0) -> dict[str, Any]:
    """DCI (Eastwood & Williams 2018, "A framework for the quantitative evaluation of disentangled
    representations"): one predictor per factor from all D codes gives the importance matrix
    R ``(D, F)`` (:func:`dci_from_importance` for D and C); informativeness is prediction accuracy.

    codes ``(N, D)``; factors ``(N, F)`` integer classes. The rows are split by
    :func:`train_test_indices` (``train_fraction``, ``seed``); predictors fit on the train part.

    - ``importance="lasso"`` (the paper's, the default): per factor a lasso (:func:`lasso`,
      α = ``alpha`` = 0.02, the authors' reference code) from the standardized codes to the
      standardized class index; R_ij = |w_ij|. Its informativeness: the prediction rounded to the
      nearest class index, accuracy; also the paper's NRMSE (RMSE / std of the class index).
    - ``importance="gbt"`` (disentanglement_lib's default; needs scikit-learn): per factor
      ``GradientBoostingClassifier(random_state=seed)`` with scikit-learn's defaults on the raw
      codes; R_.j = its ``feature_importances_``; informativeness its classification accuracy.

    informativeness = mean over factors of the test accuracy (disentanglement_lib's convention);
    ``informativeness_train`` the same on the train part. Returns ``{"disentanglement",
    "completeness", "informativeness", "informativeness_train", "nrmse" (lasso only),
    "importance" (D, F), "per_code", "per_factor", "per_factor_accuracy" (F,), "n_train", "n_test"}``.
    """
    z, v = as_float64(codes), _classes(factors)
    tr, te = train_test_indices(len(z), train_fraction, seed)
    d, f = z.shape[1], v.shape[1]
    r = np.zeros((d, f))
    acc_tr, acc_te, nrmse = np.zeros(f), np.zeros(f), np.zeros(f)
    if importance == "lasso":
        ztr, zte = _standardize(z[tr], z[te])
        for k in range(f):
            y = v[:, k].astype(np.float64)
            mu, sd = y[tr].mean(), y[tr].std()
            sd = sd if sd > 0 else 1.0
            w = lasso(ztr, (y[tr] - mu) / sd, alpha)
            r[:, k] = np.abs(w)
            top = v[:, k].max()
            for rows, zz, acc in ((tr, ztr, acc_tr), (te, zte, acc_te)):
                pred = zz @ w * sd + mu                          # back to class-index units
                acc[k] = np.mean(np.clip(np.rint(pred), 0, top) == v[rows, k])
            err = zte @ w * sd + mu - y[te]
            nrmse[k] = np.sqrt(np.mean(err ** 2)) / (y[te].std() if y[te].std() > 0 else 1.0)
    elif importance == "gbt":
        try:
            from sklearn.ensemble import GradientBoostingClassifier
        except ImportError as e:  # scikit-learn is optional: the lasso needs nothing
            raise ImportError("dci with importance='gbt' needs scikit-learn (pip install scikit-learn); "
                              "importance='lasso' needs nothing") from e
        for k in range(f):
            if np.unique(v[tr, k]).size < 2:                     # nothing to learn: no importance
                acc_tr[k] = acc_te[k] = 1.0
                continue
            model = GradientBoostingClassifier(random_state=seed).fit(z[tr], v[tr, k])
            r[:, k] = np.abs(model.feature_importances_)
            acc_tr[k] = np.mean(model.predict(z[tr]) == v[tr, k])
            acc_te[k] = np.mean(model.predict(z[te]) == v[te, k])
    else:
        raise ValueError(f"importance must be 'lasso' or 'gbt', got {importance!r}")
    out = dci_from_importance(r)
    res = {"disentanglement": out["disentanglement"], "completeness": out["completeness"],
           "informativeness": float(acc_te.mean()), "informativeness_train": float(acc_tr.mean()),
           "importance": r, "per_code": out["per_code"], "per_factor": out["per_factor"],
           "per_factor_accuracy": acc_te, "n_train": len(tr), "n_test": len(te)}
    if importance == "lasso":
        res["nrmse"] = float(nrmse.mean())
    return res


# --- SAP -----------------------------------------------------------------------------------------

def sap(codes: Any, factors: Any, continuous: bool = False, c: float = 0.01,
        train_fraction: float = TRAIN_FRACTION, seed: int = 0) -> dict[str, Any]:
    """SAP, the Separated Attribute Predictability score (Kumar et al. 2018, "Variational inference
    of disentangled latent concepts from unlabeled observations", the DIP-VAE paper, section 3).

    A score matrix S ``(D, F)``: how well code dimension i alone predicts factor j; per factor the
    gap between its two best dimensions; SAP = mean over factors of the gaps.

    - discrete factors (the default, as disentanglement_lib): S_ij = test accuracy of a linear SVM
      on the one dimension (:func:`svm_1d`: one-vs-rest squared hinge, C = ``c`` = 0.01, balanced
      class weights, liblinear's penalised bias), fitted on the train part. Its class regions on
      the line are intervals between thresholds, the paper's "one or more thresholds" classifier;
      accuracy is plain (disentanglement_lib's), not the paper's balanced accuracy.
    - ``continuous=True``: S_ij = R² of the least-squares line from z_i to the class index, fitted
      on the train part, scored on the test part (clipped at 0); the paper's regression score.

    The paper's zeroing of inactive dimensions is not applied (disentanglement_lib's convention).
    codes ``(N, D)``; factors ``(N, F)`` integer classes; rows split by :func:`train_test_indices`.
    Returns ``{"sap", "per_factor" (F,), "scores" (D, F), "n_train", "n_test"}``.
    """
    z, v = as_float64(codes), _classes(factors)
    tr, te = train_test_indices(len(z), train_fraction, seed)
    d, f = z.shape[1], v.shape[1]
    s = np.zeros((d, f))
    for i in range(d):
        for k in range(f):
            if continuous:
                x, y = z[tr, i], v[tr, k].astype(np.float64)
                vx = x.var()
                slope = ((x - x.mean()) * (y - y.mean())).mean() / vx if vx > 1e-12 else 0.0
                pred = y.mean() + slope * (z[te, i] - x.mean())
                yt = v[te, k].astype(np.float64)
                sst = ((yt - yt.mean()) ** 2).sum()
                s[i, k] = max(0.0, 1.0 - ((yt - pred) ** 2).sum() / sst) if sst > 0 else 0.0
            else:
                classes, theta = svm_1d(z[tr, i], v[tr, k], c=c)
                s[i, k] = np.mean(svm_1d_predict(classes, theta, z[te, i]) == v[te, k])
    top = np.sort(s, axis=0)[::-1]
    gaps = top[0] - (top[1] if d > 1 else 0.0)
    return {"sap": float(gaps.mean()), "per_factor": gaps, "scores": s, "n_train": len(tr), "n_test": len(te)}


# --- FactorVAE score -----------------------------------------------------------------------------

def factorvae_score(represent: Callable[[np.ndarray], np.ndarray], factor_sizes: Sequence[int],
                    rng: np.random.Generator, batch_size: int = 64, num_train: int = 10000,
                    num_eval: int = 5000, num_variance_estimate: int = 10000, prune_std: float = 0.0,
                    chunk: int = 16, tick: Callable[[int], object] | None = None) -> dict[str, Any]:
    """The FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by factorising",
    section 4), with disentanglement_lib's defaults: ``batch_size`` L = 64, ``num_train`` = 10,000
    and ``num_eval`` = 5,000 votes, ``num_variance_estimate`` = 10,000.

    ``represent(classes (M, F) int64) -> codes (M, D)``: the codes of freshly generated examples
    with those factor classes; factors are drawn uniformly and independently from
    ``factor_sizes`` (the full grid). Steps:

    1. s_d = std (ddof 1) of each code dimension over ``num_variance_estimate`` examples; keep the
       dimensions with s_d > ``prune_std`` (0: disentanglement_lib keeps every dimension, here a
       constant one is dropped because its normalised variance is 0/0);
    2. a vote: pick a factor k uniformly, draw L examples that share one value of k and vary the
       rest, and take argmin_d Var_L(z_d) / s_d² over the kept dimensions;
    3. the majority-vote classifier maps each dimension to the factor it got most training votes
       for (ties: the first factor); score = its accuracy on the evaluation votes.

    ``chunk``: votes whose L·chunk examples go through ``represent`` at once; ``tick``: called with
    the number of examples after each call (a progress bar). Returns ``{"score" (eval accuracy),
    "train_accuracy", "num_active_dims", "active" (D,) bool, "classifier" (D,) factor per dim (−1:
    pruned or no votes), "train_votes" (F, D)}``.
    """
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    f = sizes.size

    def draw(m: int) -> np.ndarray:
        return (rng.random((m, f)) * sizes).astype(np.int64)

    def codes_of(classes: np.ndarray) -> np.ndarray:
        out = as_float64(represent(classes))
        if tick is not None:
            tick(len(classes))
        return out.reshape(len(classes), -1)

    parts = [codes_of(draw(min(chunk * batch_size, num_variance_estimate - i)))
             for i in range(0, num_variance_estimate, chunk * batch_size)]
    global_var = np.concatenate(parts).var(axis=0, ddof=1)
    d = global_var.size
    active = np.sqrt(global_var) > prune_std
    if not active.any():
        return {"score": 0.0, "train_accuracy": 0.0, "num_active_dims": 0, "active": active,
                "classifier": np.full(d, -1), "train_votes": np.zeros((f, d), dtype=np.int64)}
    idx = np.flatnonzero(active)

    def votes(num: int) -> np.ndarray:
        out = np.zeros((f, d), dtype=np.int64)
        for start in range(0, num, chunk):
            m = min(chunk, num - start)
            fixed = rng.integers(0, f, m)                          # the factor each vote fixes
            classes = draw(m * batch_size).reshape(m, batch_size, f)
            rows = np.arange(m)
            classes[rows, :, fixed] = classes[rows, 0, fixed][:, None]
            z = codes_of(classes.reshape(-1, f)).reshape(m, batch_size, d)
            local = z[:, :, idx].var(axis=1, ddof=1) / global_var[idx]
            np.add.at(out, (fixed, idx[local.argmin(1)]), 1)
        return out

    train = votes(num_train)
    classifier = np.where(train.sum(0) > 0, train.argmax(0), -1)
    classifier[~active] = -1
    hit = lambda v: sum(v[classifier[j], j] for j in idx if classifier[j] >= 0)  # noqa: E731
    ev = votes(num_eval)
    return {"score": float(hit(ev) / max(ev.sum(), 1)), "train_accuracy": float(hit(train) / max(train.sum(), 1)),
            "num_active_dims": int(active.sum()), "active": active, "classifier": classifier, "train_votes": train}


# --- modularity and explicitness (Ridgeway & Mozer 2018) -----------------------------------------

def modularity(codes: Any, factors: Any, n_bins: int = 20) -> dict[str, Any]:
    """Modularity (Ridgeway & Mozer 2018, "Learning deep disentangled embeddings with the
    F-statistic loss", section 3): each code dimension should carry information about at most one
    factor. m_if = I(z_i; v_f), plug-in mutual information with each code dimension cut into
    ``n_bins`` = 20 equal-width bins (:func:`disentangle.discretize`, as ``mig``); per dimension,
    θ_i = max_f m_if and

        δ_i = Σ_{f ≠ argmax} m_if² / (θ_i² (F − 1)),   modularity_i = 1 − δ_i;

    modularity = mean over all D dimensions; a dimension with no information about any factor
    (θ_i = 0) scores 0 (disentanglement_lib's convention; the paper does not say). A dimension of
    pure noise still has the plug-in estimator's small positive bias with every factor, largest for
    the factor with most values, so its score reflects that bias, not information (``mi`` shows it).
    codes ``(N, D)``; factors ``(N, F)`` integer classes; all N rows (no fitting). Returns ``{"modularity", "per_dim" (D,), "mi" (D, F)}``."""
    c, v = discretize(codes, n_bins), _classes(factors)
    d, f = c.shape[1], v.shape[1]
    mi = np.array([[discrete_mutual_info(c[:, i], v[:, k]) for k in range(f)] for i in range(d)]).reshape(d, f)
    sq = mi ** 2
    top = sq.max(1) if f else np.zeros(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(1) - top) / (top * (f - 1)) if f > 1 else np.zeros(d)
    per_dim = np.where(top > 0, 1.0 - delta, 0.0)
    return {"modularity": float(per_dim.mean()), "per_dim": per_dim, "mi": mi}


def explicitness(codes: Any, factors: Any, c: float = 1.0, train_fraction: float = TRAIN_FRACTION,
                 seed: int = 0) -> dict[str, Any]:
    """Explicitness (Ridgeway & Mozer 2018): how linearly decodable each factor is from the whole
    code. Per factor, a one-vs-rest classifier: one binary logistic regression per value
    (:func:`logistic_regression`, L2, C = ``c`` = 1) on the codes standardized with the train
    part's mean and std, fitted on the train part. Each example's scores are the values' sigmoids
    normalised to sum to 1 (a one-vs-rest classifier's class probabilities, as scikit-learn's
    ``predict_proba`` of the 2018 default that the paper and disentanglement_lib used: the
    normalisation lets a middle value of an ordered factor, which no single line separates, still
    rank high between its neighbours). Per value, the ROC AUC (:func:`roc_auc`) of its probability
    on the test part (values with positives and negatives there); a factor's explicitness is the
    mean over its values, explicitness the mean over factors. (Current disentanglement_lib with
    current scikit-learn fits one multinomial regression instead; liblinear's OvR, the 2018 default,
    also penalised the intercept, which is free here.)
    Returns ``{"explicitness", "explicitness_train", "per_factor" (F,), "n_train", "n_test"}``."""
    z, v = as_float64(codes), _classes(factors)
    tr, te = train_test_indices(len(z), train_fraction, seed)
    ztr, zte = _standardize(z[tr], z[te])
    f = v.shape[1]
    per, per_tr = np.full(f, np.nan), np.full(f, np.nan)
    for k in range(f):
        values = np.unique(v[:, k])
        if values.size < 2:
            continue
        theta = np.stack([logistic_regression(ztr, v[tr, k] == val, c=c) for val in values], 1)  # (D+1, K)

        def probs(zz):
            p = 0.5 * (1.0 + np.tanh(0.5 * (zz @ theta[:-1] + theta[-1])))
            return p / p.sum(1, keepdims=True)
        p_tr, p_te = probs(ztr), probs(zte)
        aucs = [roc_auc(v[te, k] == val, p_te[:, j]) for j, val in enumerate(values)]
        aucs_tr = [roc_auc(v[tr, k] == val, p_tr[:, j]) for j, val in enumerate(values)]
        if np.isfinite(aucs).any():
            per[k], per_tr[k] = np.nanmean(aucs), np.nanmean(aucs_tr)
    ok = np.isfinite(per)
    return {"explicitness": float(per[ok].mean()) if ok.any() else float("nan"),
            "explicitness_train": float(per_tr[ok].mean()) if ok.any() else float("nan"),
            "per_factor": per, "n_train": len(tr), "n_test": len(te)}


def modularity_explicitness(codes: Any, factors: Any, n_bins: int = 20, c: float = 1.0,
                            train_fraction: float = TRAIN_FRACTION, seed: int = 0) -> dict[str, Any]:
    """:func:`modularity` and :func:`explicitness` of one code, in one dict."""
    m, e = modularity(codes, factors, n_bins), explicitness(codes, factors, c, train_fraction, seed)
    return {"modularity": m["modularity"], "per_dim": m["per_dim"], "mi": m["mi"],
            "explicitness": e["explicitness"], "explicitness_train": e["explicitness_train"],
            "explicitness_per_factor": e["per_factor"], "n_train": e["n_train"], "n_test": e["n_test"]}
