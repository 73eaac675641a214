"""Ex-post latent priors: a Gaussian mixture fitted by EM on a trained encoder's codes.

A deterministic autoencoder (ae, wae-gan, maskaae) or a VAE whose aggregate posterior is not its
N(0, I) prior samples poorly from N(0, I); fitting a density to the codes of training examples
after training and decoding draws from it ("ex-post density estimation", Ghosh et al. 2020, "From
variational to deterministic autoencoders", section 4; pythae's ``GaussianMixtureSampler``) lowers
their FID a lot. This module is the pure part: codes in, mixture out, no run directories
(``genae.ex_post`` encodes the training split and stores the mixture in a checkpoint).

The estimator is the maximum-likelihood mixture of K full-covariance Gaussians by EM with the
conventions of scikit-learn's ``GaussianMixture`` (defaults K = 10 as pythae, ``tol`` = 1e-3 on
the mean log-likelihood per code, ``reg_covar`` = 1e-6 added to every covariance's diagonal,
``max_iter`` = 100, initial responsibilities from k-means), so a fit here and one there from the
same start agree to rounding (tests/test_priors.py). k-means starts from k-means++ seeding
(Arthur & Vassilvitskii 2007) drawn from ``seed``: the whole fit is a function of (codes, K, seed).
Everything is float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["GaussianMixture", "fit_gmm", "kmeans_pp"]


@dataclass
class GaussianMixture:
    """K full-covariance Gaussians over D-dimensional codes, float64.

    weights: ``(K,)`` mixing proportions (sum 1); means: ``(K, D)``; covariances: ``(K, D, D)``
    (symmetric positive definite). info: how it was fitted (components, seed, n_codes, iterations,
    converged, log_likelihood = mean log-density of the codes it was fitted on, in nats).
    """

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
            raise ValueError(f"GaussianMixture: weights {tuple(self.weights.shape)}, means {(k, d)}, "
                             f"covariances {tuple(self.covariances.shape)} do not fit K={k}, D={d}")
        self._chol = torch.linalg.cholesky(self.covariances.double())

    @property
    def components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` codes -> ``(N,)`` log p(z) (nats) = logsumexp_k [log π_k + log N(z | μ_k, Σ_k)]."""
        return torch.logsumexp(_weighted_log_normal(z.double(), self.weights.double().log(),
                                                    self.means.double(), self._chol), dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, D)`` float64 on the CPU: component c ~ Categorical(π), then
        z = μ_c + L_c ε with Σ_c = L_c L_cᵀ and ε ~ N(0, I). ``generator`` (a CPU one) makes them
        reproducible without touching the global RNG."""
        c = torch.multinomial(self.weights.double(), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means.double()[c] + (self._chol[c] @ eps.unsqueeze(-1)).squeeze(-1)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The parameters as named contiguous CPU tensors (for safetensors)."""
        return {"weights": self.weights.double().contiguous(), "means": self.means.double().contiguous(),
                "covariances": self.covariances.double().contiguous()}


def _weighted_log_normal(z: torch.Tensor, log_w: torch.Tensor, means: torch.Tensor,
                         chol: torch.Tensor) -> torch.Tensor:
    """``(N, K)``: log π_k + log N(z_n | μ_k, L_k L_kᵀ), via one triangular solve per component:
    −½ (D log 2π + 2 Σ log diag L_k + ‖L_k⁻¹ (z − μ_k)‖²)."""
    n, d = z.shape
    out = torch.empty(n, len(means), dtype=torch.float64)
    for k in range(len(means)):
        y = torch.linalg.solve_triangular(chol[k], (z - means[k]).T, upper=False)   # (D, N)
        logdet = 2.0 * torch.log(torch.diagonal(chol[k])).sum()
        out[:, k] = log_w[k] - 0.5 * (d * math.log(2 * math.pi) + logdet + (y * y).sum(0))
    return out


def kmeans_pp(z: torch.Tensor, k: int, generator: torch.Generator, max_iter: int = 300,
              tol: float = 1e-4) -> torch.Tensor:
    """Hard k-means labels ``(N,)`` of codes ``(N, D)``: k-means++ seeding (each new centre drawn
    with probability ∝ squared distance to the nearest chosen one) from ``generator``, then Lloyd
    iterations until the centres move less than ``tol`` × the codes' mean variance (scikit-learn's
    relative tolerance) or ``max_iter``. A centre left without codes keeps its place."""
    z = z.double()
    n = len(z)
    centres = z[torch.randint(n, (1,), generator=generator)]
    d2 = ((z - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        nxt = z[torch.multinomial(p, 1, generator=generator)]
        centres = torch.cat([centres, nxt])
        d2 = torch.minimum(d2, ((z - nxt[0]) ** 2).sum(1))
    scale = tol * z.var(0).mean()
    for _ in range(max_iter):
        labels = torch.cdist(z, centres).argmin(1)
        new = centres.clone()
        for j in range(k):
            sel = labels == j
            if sel.any():
                new[j] = z[sel].mean(0)
        shift = ((new - centres) ** 2).sum()
        centres = new
        if shift <= scale:
            break
    return torch.cdist(z, centres).argmin(1)


def _m_step(z: torch.Tensor, resp: torch.Tensor, reg_covar: float
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maximum-likelihood (weights, means, covariances) under responsibilities ``resp`` ``(N, K)``;
    10·eps added to every component's mass as scikit-learn does (an empty component stays finite)."""
    nk = resp.sum(0) + 10 * torch.finfo(torch.float64).eps
    means = resp.T @ z / nk[:, None]
    eye = torch.eye(z.shape[1], dtype=torch.float64)
    cov = torch.stack([((resp[:, k:k + 1] * (z - means[k])).T @ (z - means[k])) / nk[k] + reg_covar * eye
                       for k in range(resp.shape[1])])
    return nk / len(z), means, cov


def fit_gmm(codes: Any, components: int = 10, seed: int = 0, max_iter: int = 100, tol: float = 1e-3,
            reg_covar: float = 1e-6, init: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
            ) -> GaussianMixture:
    """Maximum-likelihood Gaussian mixture of ``codes`` ``(N, D)`` by EM (float64).

    Start: hard k-means labels (``kmeans_pp`` seeded by ``seed``) turned into one M-step, unless
    ``init`` = (weights, means, covariances) is given. Then E- and M-steps alternate until the mean
    log-likelihood per code changes by less than ``tol`` (nats) or ``max_iter`` iterations; the
    returned parameters are those of the last M-step (scikit-learn's loop). ``info`` records K,
    seed, N, iterations, convergence and the final mean log-likelihood.
    """
    z = torch.as_tensor(codes).double().cpu()
    if z.ndim != 2 or len(z) < components:
        raise ValueError(f"fit_gmm: codes must be (N, D) with N ≥ components={components}; got {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("fit_gmm: the codes contain NaN or inf")
    if init is None:
        g = torch.Generator().manual_seed(seed)
        labels = kmeans_pp(z, components, g)
        resp = torch.nn.functional.one_hot(labels, components).double()
        weights, means, cov = _m_step(z, resp, reg_covar)
    else:
        weights, means, cov = (t.double().cpu() for t in init)
    lower, converged, it = -math.inf, False, 0
    for it in range(1, max_iter + 1):
        chol = torch.linalg.cholesky(cov)
        wlp = _weighted_log_normal(z, weights.log(), means, chol)
        norm = torch.logsumexp(wlp, 1)
        resp = (wlp - norm[:, None]).exp()
        weights, means, cov = _m_step(z, resp, reg_covar)
        previous, lower = lower, float(norm.mean())
        if abs(lower - previous) < tol:
            converged = True
            break
    info = {"components": components, "seed": seed, "n_codes": len(z), "iterations": it,
            "converged": converged, "log_likelihood": lower, "tol": tol, "reg_covar": reg_covar,
            "max_iter": max_iter}
    return GaussianMixture(weights, means, cov, info)
