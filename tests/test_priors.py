"""genae.priors: the EM Gaussian mixture against scikit-learn's from the same start, float64 NumPy
log-densities, and closed-form cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genae.priors import GaussianMixture, fit_gmm, kmeans_pp


def _blobs(n=600, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [6.0] + [0.0] * (d - 1), [0.0, 6.0] + [0.0] * (d - 2)])
    a = rng.normal(size=(3, d, d)) * 0.4
    covs = a @ a.transpose(0, 2, 1) + 0.3 * np.eye(d)
    lab = rng.integers(0, 3, n)
    z = np.stack([rng.multivariate_normal(centres[k], covs[k]) for k in lab])
    return z, lab, centres, covs


def _np_log_prob(z, w, mu, cov):
    """Mixture log-density written directly from the Gaussian formula (float64 NumPy)."""
    out = []
    for k in range(len(w)):
        diff = z - mu[k]
        inv = np.linalg.inv(cov[k])
        _, logdet = np.linalg.slogdet(cov[k])
        out.append(math.log(w[k]) - 0.5 * (z.shape[1] * math.log(2 * math.pi) + logdet
                                           + np.einsum("ni,ij,nj->n", diff, inv, diff)))
    out = np.stack(out, 1)
    m = out.max(1, keepdims=True)
    return (m + np.log(np.exp(out - m).sum(1, keepdims=True)))[:, 0]


def test_log_prob_matches_numpy_formula():
    z, _, centres, covs = _blobs()
    w = np.array([0.2, 0.5, 0.3])
    gmm = GaussianMixture(torch.tensor(w), torch.tensor(centres), torch.tensor(covs))
    np.testing.assert_allclose(gmm.log_prob(torch.tensor(z)).numpy(), _np_log_prob(z, w, centres, covs),
                               rtol=1e-12, atol=1e-10)


def test_em_equals_sklearn_from_the_same_start():
    """Given one initial mixture, genae's EM and scikit-learn's GaussianMixture (full covariance,
    the same tol, reg_covar and max_iter) run the same iterations to the same parameters."""
    sk = pytest.importorskip("sklearn.mixture")
    z, *_ = _blobs(d=4, seed=1)
    z = np.concatenate([z, np.random.default_rng(5).normal(size=(200, 4)) * 3])   # overlapping, so EM iterates
    k = 4
    labels = kmeans_pp(torch.tensor(z), k, torch.Generator().manual_seed(3))
    resp = np.eye(k)[labels.numpy()]
    nk = resp.sum(0) + 10 * np.finfo(float).eps
    mu0 = resp.T @ z / nk[:, None]
    cov0 = np.stack([(resp[:, j:j + 1] * (z - mu0[j])).T @ (z - mu0[j]) / nk[j] + 1e-6 * np.eye(4) for j in range(k)])
    w0 = nk / len(z)
    ours = fit_gmm(z, k, init=(torch.tensor(w0), torch.tensor(mu0), torch.tensor(cov0)), tol=1e-6, max_iter=50)
    ref = sk.GaussianMixture(k, covariance_type="full", tol=1e-6, reg_covar=1e-6, max_iter=50,
                             weights_init=w0, means_init=mu0, precisions_init=np.linalg.inv(cov0)).fit(z)
    assert ours.info["iterations"] == ref.n_iter_
    assert ours.info["converged"] == ref.converged_
    np.testing.assert_allclose(ours.weights.numpy(), ref.weights_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.means.numpy(), ref.means_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(ours.covariances.numpy(), ref.covariances_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.info["log_likelihood"], ref.lower_bound_, rtol=1e-9)
    np.testing.assert_allclose(ours.log_prob(torch.tensor(z)).numpy(), ref.score_samples(z), rtol=1e-8, atol=1e-8)


def test_fit_recovers_separated_clusters_and_is_a_function_of_seed():
    z, _, centres, covs = _blobs(n=3000, d=2, seed=2)
    a, b = fit_gmm(z, 3, seed=7), fit_gmm(z, 3, seed=7)
    for name in ("weights", "means", "covariances"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    order = [int(np.argmin(((a.means.numpy() - c) ** 2).sum(1))) for c in centres]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(a.means.numpy()[order], centres, atol=0.15)
    np.testing.assert_allclose(a.covariances.numpy()[order], covs, atol=0.15)
    assert a.info["converged"] and a.info["n_codes"] == 3000


def test_sample_moments_and_reproducibility():
    w = torch.tensor([0.25, 0.75], dtype=torch.float64)
    mu = torch.tensor([[-3.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    cov = torch.tensor([[[1.0, 0.5], [0.5, 2.0]], [[0.5, -0.2], [-0.2, 0.3]]], dtype=torch.float64)
    gmm = GaussianMixture(w, mu, cov)
    s = gmm.sample(200_000, torch.Generator().manual_seed(0))
    assert torch.equal(s, gmm.sample(200_000, torch.Generator().manual_seed(0)))
    mean = (w[:, None] * mu).sum(0)
    second = sum(w[k] * (cov[k] + torch.outer(mu[k], mu[k])) for k in range(2))
    np.testing.assert_allclose(s.mean(0).numpy(), mean.numpy(), atol=0.02)
    np.testing.assert_allclose((s.T @ s / len(s)).numpy(), second.numpy(), atol=0.05)


def test_degenerate_codes_stay_finite():
    """Codes with a constant dimension (an AE's dead unit): reg_covar keeps every covariance
    positive definite, the fit and its samples finite."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(500, 3)), np.zeros((500, 1))], 1)
    gmm = fit_gmm(z, 5, seed=0)
    assert torch.isfinite(gmm.log_prob(torch.tensor(z))).all()
    assert torch.isfinite(gmm.sample(100, torch.Generator().manual_seed(1))).all()


def test_bad_codes_are_refused():
    with pytest.raises(ValueError, match="N ≥ components"):
        fit_gmm(np.zeros((3, 2)), 10)
    with pytest.raises(ValueError, match="NaN"):
        fit_gmm(np.full((20, 2), np.nan), 2)
